// One build of the library answering one scenario through fastify.inject, in a loop:
//   node inject-loop.mjs <dist dir> <memory|cookie> <read|counter|anon|login> <requests>
// No sockets and no load generator, so under callgrind the instructions it executes are
// nearly the same from run to run (see ../instructions.mjs).
import { createRequire } from 'node:module'

const [dist, storeName, scenario, count] = process.argv.slice(2)
const require = createRequire(import.meta.url)
const Fastify = require('fastify')
const lib = require(`${dist}/index.js`)

const app = Fastify()
await app.register(lib, {
  secret: 'benchmark-secret-benchmark-secret-0123456789',
  store: storeName === 'memory' ? new lib.MemoryStore() : new lib.CookieStore()
})
const increment = (s) => s.set('n', (s.get('n') ?? 0) + 1)
app.post('/seed', async (request) => { request.session.set('n', 0); return { ok: true } })
app.get('/read', async (request) => ({ n: request.session.get('n') }))
app.post('/counter', async (request) => { await request.session.update(increment); return { ok: true } })
app.get('/anon', async () => ({ ok: true }))
app.post('/login', async (request) => {
  await request.session.regenerate()
  request.session.set('user', 'ada')
  return { ok: true }
})

const seeded = await app.inject({ method: 'POST', url: '/seed' })
const cookie = seeded.headers['set-cookie'].split(';')[0]
const request = {
  method: scenario === 'read' || scenario === 'anon' ? 'GET' : 'POST',
  url: `/${scenario}`,
  headers: scenario === 'read' || scenario === 'counter' ? { cookie } : {}
}
for (let i = 0; i < Number(count); i++) {
  const response = await app.inject(request)
  if (response.statusCode !== 200) throw new Error(`${scenario}: ${response.statusCode} ${response.body}`)
}

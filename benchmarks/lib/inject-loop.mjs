// One build of the library answering one scenario through fastify.inject, in a loop:
//   node inject-loop.mjs <dist dir> <memory|cookie|bare|secure-session> <read|counter|anon|login|browser> <requests>
// No sockets and no load generator, so under callgrind the instructions it executes are
// nearly the same from run to run (see ../instructions.mjs). `bare` (no session plugin) and
// `secure-session` (@fastify/secure-session, the sealed-cookie anchor) ignore the build, so
// one callgrind run can set the build's overhead against the anchor's.
import { createHash } from 'node:crypto'
import { createRequire } from 'node:module'

const [dist, storeName, scenario, count] = process.argv.slice(2)
const require = createRequire(import.meta.url)
const Fastify = require('fastify')
const SECRET = 'benchmark-secret-benchmark-secret-0123456789'

const app = Fastify()
const anchor = storeName === 'bare' || storeName === 'secure-session'
if (storeName === 'secure-session') {
  await app.register(require('@fastify/secure-session'), {
    key: createHash('sha256').update(SECRET).digest(),
    cookie: { path: '/', httpOnly: true, secure: false }
  })
} else if (!anchor) {
  const lib = require(`${dist}/index.js`)
  await app.register(lib, { secret: SECRET, store: storeName === 'memory' ? new lib.MemoryStore() : new lib.CookieStore() })
}
const increment = (s) => s.set('n', (s.get('n') ?? 0) + 1)
const BARE_COOKIE = `sid=${'x'.repeat(87)}; Path=/; HttpOnly; SameSite=Lax`
app.post('/seed', async (request, reply) => {
  if (storeName === 'bare') return reply.header('set-cookie', BARE_COOKIE).send({ ok: true })
  request.session.set('n', 0)
  return { ok: true }
})
app.get('/read', async (request) => ({ n: storeName === 'bare' ? null : request.session.get('n') }))
// Each library's idiomatic code, as in server.mjs: update() here, get/set in the anchor.
app.post('/counter', async (request) => {
  if (storeName === 'secure-session') increment(request.session)
  else if (!anchor) await request.session.update(increment)
  return { ok: true }
})
app.get('/anon', async () => ({ ok: true }))
app.post('/login', async (request) => {
  if (storeName === 'bare') return { ok: true }
  await request.session.regenerate()
  request.session.set('user', 'ada')
  return { ok: true }
})

// The browser scenario of run.mjs: page, counter, page, visit, following Set-Cookie. The
// visited item is counted, not drawn at random, so that every run does the same work.
let visited = 0
const bare = storeName === 'bare'
app.get('/page', async (request) => ({ n: bare ? null : request.session.get('n'), visits: bare ? [] : request.session.get('visits') ?? [] }))
app.post('/visit', async (request) => {
  if (!bare) request.session.set('visits', [...(request.session.get('visits') ?? []), `/item/${visited++ % 1000}`].slice(-10))
  return { ok: true }
})
const BROWSER = [['GET', '/page'], ['POST', '/counter'], ['GET', '/page'], ['POST', '/visit']]

const cookieOf = (response) => [response.headers['set-cookie'] ?? []].flat()[0]?.split(';')[0]
let cookie = cookieOf(await app.inject({ method: 'POST', url: '/seed' }))
const fixed = {
  method: scenario === 'read' || scenario === 'anon' ? 'GET' : 'POST',
  url: `/${scenario}`,
  headers: scenario === 'read' || scenario === 'counter' ? { cookie } : {}
}
// fastify.inject settles without leaving the microtask queue, so a loop of injections never
// returns to the event loop: every setImmediate() it schedules, with the request and reply it
// holds, would be kept until the loop ends (10 KB a request; a heap of 1 GB after 100,000
// requests, whose collections then dwarf the cost measured). A turn of the event loop now
// and then lets them run and be collected.
const TURN = 64
for (let i = 0; i < Number(count); i++) {
  if (i % TURN === 0) await new Promise((resolve) => setImmediate(resolve))
  const [method, url] = BROWSER[i % BROWSER.length]
  const request = scenario === 'browser' ? { method, url, headers: { cookie } } : fixed
  const response = await app.inject(request)
  if (response.statusCode !== 200) throw new Error(`${scenario}: ${response.statusCode} ${response.body}`)
  if (scenario === 'browser') cookie = cookieOf(response) ?? cookie
}

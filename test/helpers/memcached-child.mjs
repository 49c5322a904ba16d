// A second application process on the same memcached servers, for the two-process tests of
// MemcachedStore. It runs the built package, waits for "go" on stdin, sends COUNT update()
// increments at once to the session in COOKIE, then creates COUNT new sessions at once, then
// sets COUNT distinct keys (c0, c1, …) at once in the session in COOKIE, and prints the status
// codes as one JSON line.
import Fastify from 'fastify'
import memjs from 'memjs'
import fastifySessions, { MemcachedStore } from '../../dist/index.mjs'

const { SERVERS, COOKIE, COUNT, SECRET } = process.env
const client = memjs.Client.create(SERVERS, { logger: { log () {} } })
const app = Fastify()
await app.register(fastifySessions, { secret: SECRET, store: new MemcachedStore({ client }) })
app.post('/increment', async (req) => {
  await req.session.update((s) => { s.set('counter', (s.get('counter') ?? 0) + 1) })
  return 'ok'
})
app.post('/login', async (req) => { req.session.set('user', 'child'); return 'ok' })
app.post('/set/:key', async (req) => { req.session.set(req.params.key, true); return 'ok' })
await app.ready()

process.stdout.write('ready\n')
process.stdin.once('data', async () => {
  const post = (url) => app.inject({ method: 'POST', url, headers: { cookie: COOKIE } })
  const count = Number(COUNT)
  const results = [
    ...await Promise.all(Array.from({ length: count }, () => post('/increment'))),
    ...await Promise.all(Array.from({ length: count }, () => app.inject({ method: 'POST', url: '/login' }))),
    ...await Promise.all(Array.from({ length: count }, (_, i) => post(`/set/c${i}`)))
  ]
  process.stdout.write(JSON.stringify(results.map((r) => r.statusCode)) + '\n')
  await app.close()
  client.close()
})

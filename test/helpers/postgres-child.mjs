// A second application process on the same PostgreSQL table, for the two-process tests of
// PostgresStore. It runs the built package (storeTimeout STORE_TIMEOUT seconds), waits for
// "go" on stdin, then sends COUNT requests at once each time: update() increments of the
// session in COOKIE, writes of the distinct keys child0, child1, … to that session, and new
// sessions. It prints one JSON line: each request's outcome, "ok" or its error code.
import Fastify from 'fastify'
import pg from 'pg'
import fastifySessions, { PostgresStore } from '../../dist/index.mjs'

const { PG_PORT, TABLE, COOKIE, COUNT, SECRET, STORE_TIMEOUT } = process.env
const pool = new pg.Pool({ host: '127.0.0.1', port: Number(PG_PORT), user: 'postgres', database: 'postgres', max: 10 })
const app = Fastify()
await app.register(fastifySessions, { secret: SECRET, storeTimeout: Number(STORE_TIMEOUT), store: new PostgresStore({ pool, table: TABLE, prune: false }) })
app.post('/increment', async (req) => {
  await req.session.update((s) => { s.set('counter', (s.get('counter') ?? 0) + 1) })
  return 'ok'
})
app.post('/set/:key', async (req) => { req.session.set(req.params.key, true); return 'ok' })
app.post('/login', async (req) => { req.session.set('user', 'child'); return 'ok' })
await app.ready()

function outcome (res) {
  if (res.statusCode === 200) return 'ok'
  try {
    return res.json().code ?? `${res.statusCode} ${res.body}`
  } catch {
    return `${res.statusCode} ${res.body}`
  }
}

process.stdout.write('ready\n')
process.stdin.once('data', async () => {
  const post = (url) => app.inject({ method: 'POST', url, headers: { cookie: COOKIE } })
  const count = Number(COUNT)
  const results = [
    ...await Promise.all(Array.from({ length: count }, () => post('/increment'))),
    ...await Promise.all(Array.from({ length: count }, (_, i) => post(`/set/child${i}`))),
    ...await Promise.all(Array.from({ length: count }, () => app.inject({ method: 'POST', url: '/login' })))
  ]
  process.stdout.write(JSON.stringify(results.map(outcome)) + '\n')
  await app.close()
  await pool.end()
})

// A second application process on the same MongoDB collection, for the two-process tests of
// MongoStore. It runs the built package, waits for "go" on stdin, sends COUNT update()
// increments at once to the session in COOKIE, then creates COUNT new sessions at once, and
// prints the status codes as one JSON line.
import Fastify from 'fastify'
import { MongoClient } from 'mongodb'
import fastifySessions, { MongoStore } from '../../dist/index.mjs'

const { MONGO_URL, DATABASE, COLLECTION, COOKIE, COUNT, SECRET, STORE_TIMEOUT } = process.env
const client = new MongoClient(MONGO_URL)
const collection = client.db(DATABASE).collection(COLLECTION)
const app = Fastify()
await app.register(fastifySessions, { secret: SECRET, store: new MongoStore({ collection }), storeTimeout: Number(STORE_TIMEOUT ?? 2) })
app.post('/increment', async (req) => {
  await req.session.update((s) => { s.set('counter', (s.get('counter') ?? 0) + 1) })
  return 'ok'
})
app.post('/login', async (req) => { req.session.set('user', 'child'); return 'ok' })
await app.ready()

process.stdout.write('ready\n')
process.stdin.once('data', async () => {
  const post = (url) => app.inject({ method: 'POST', url, headers: { cookie: COOKIE } })
  const count = Number(COUNT)
  const results = [
    ...await Promise.all(Array.from({ length: count }, () => post('/increment'))),
    ...await Promise.all(Array.from({ length: count }, () => app.inject({ method: 'POST', url: '/login' })))
  ]
  process.stdout.write(JSON.stringify(results.map((r) => r.statusCode)) + '\n')
  await app.close()
  await client.close()
})

// MongoStore against @fastify/session with connect-mongo, on the same MongoDB wire-protocol
// test server (test/helpers/mongo-server.cjs: no real MongoDB can be installed here):
//
//   npm run build && npm install --prefix benchmarks --no-audit --no-fund && node benchmarks/mongo-commands.mjs
//
// Part 1, commands per request: what each scenario sends to the server, counted by the
// server itself (the driver's handshakes and heartbeats left out). Each command is a round
// trip and server work, whatever the server's speed, so the count is the figure to compare.
// Part 2, lost updates: 100 concurrent increments of one session's counter, through
// fastify.inject in this process; what the counter ends at, over 5 repeats.
import { mkdirSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import Fastify from 'fastify'
import { MongoClient } from 'mongodb'

const require = createRequire(import.meta.url)
const { startMongoServer } = require('../test/helpers/mongo-server.cjs')
const SECRET = 'benchmark-secret-benchmark-secret-0123456789'
const REQUESTS = 20
const RACERS = 100
const REPEATS = 5
// The driver's own traffic, not the store's.
const HANDSHAKE = new Set(['hello', 'isMaster', 'ismaster', 'endSessions'])

setTimeout(() => { console.error('mongo-commands.mjs: gave up after 3 minutes'); process.exit(1) }, 180_000).unref()

const increment = (s) => s.set('n', (s.get('n') ?? 0) + 1)

async function sessionsApp (collection) {
  const { default: fastifySessions } = await import('../dist/index.js')
  const app = Fastify()
  await app.register(fastifySessions, { secret: SECRET, store: new fastifySessions.MongoStore({ collection }) })
  app.post('/counter', async (req) => { await req.session.update(increment); return 'ok' })
  return app
}

async function connectMongoApp (collection, client) {
  const { default: cookie } = await import('@fastify/cookie')
  const { default: session } = await import('@fastify/session')
  const { default: MongoStore } = await import('connect-mongo')
  const app = Fastify()
  await app.register(cookie)
  // As in benchmarks/lib/server.mjs: no record for untouched sessions, and a read-only
  // request writes nothing (rolling: true would rewrite the record on every request).
  const store = MongoStore.create({ client, dbName: collection.dbName, collectionName: collection.collectionName })
  await app.register(session, { secret: SECRET, saveUninitialized: false, rolling: false, cookie: { secure: false }, store })
  app.post('/counter', async (req) => { increment(req.session); return 'ok' })
  return app
}

const CONTENDERS = {
  'fastify-sessions MongoStore': sessionsApp,
  '@fastify/session + connect-mongo': connectMongoApp
}

function routes (app) {
  app.get('/anon', async () => 'hello')
  app.get('/read', async (req) => ({ user: req.session.get('user') ?? null }))
  app.post('/login', async (req) => { await req.session.regenerate(); req.session.set('user', 'ada'); return 'ok' })
  app.get('/n', async (req) => ({ n: req.session.get('n') ?? 0 }))
}

function cookieOf (res) {
  const line = [res.headers['set-cookie'] ?? []].flat()[0]
  if (line === undefined) throw new Error(`no session cookie: ${res.statusCode} ${res.body}`)
  return line.split(';')[0]
}

const SCENARIOS = {
  anonymous: { method: 'GET', url: '/anon', cookie: false },
  read: { method: 'GET', url: '/read', cookie: true },
  write: { method: 'POST', url: '/counter', cookie: true },
  login: { method: 'POST', url: '/login', cookie: false }
}

/** Commands per request of each scenario, and which commands. */
async function commandsPerRequest (server, app) {
  const cookie = cookieOf(await app.inject({ method: 'POST', url: '/login' }))
  const rows = {}
  for (const [scenario, { method, url, cookie: withCookie }] of Object.entries(SCENARIOS)) {
    const from = server.received.length
    for (let i = 0; i < REQUESTS; i++) {
      const res = await app.inject({ method, url, headers: withCookie ? { cookie } : {} })
      if (res.statusCode !== 200) throw new Error(`${scenario}: ${res.statusCode} ${res.body}`)
    }
    const sent = server.received.slice(from).filter((name) => !HANDSHAKE.has(name))
    const names = {}
    for (const name of sent) names[name] = (names[name] ?? 0) + 1
    rows[scenario] = { perRequest: sent.length / REQUESTS, commands: Object.fromEntries(Object.entries(names).map(([n, c]) => [n, c / REQUESTS])) }
  }
  return rows
}

/** 100 concurrent increments of a fresh session's counter. */
async function lostIncrements (app) {
  const finals = []
  let failed = 0
  for (let i = 0; i < REPEATS; i++) {
    const cookie = cookieOf(await app.inject({ method: 'POST', url: '/login' }))
    const results = await Promise.all(Array.from({ length: RACERS }, () => app.inject({ method: 'POST', url: '/counter', headers: { cookie } })))
    failed += results.filter((r) => r.statusCode !== 200).length
    finals.push((await app.inject({ url: '/n', headers: { cookie } })).json().n)
  }
  const sorted = [...finals].sort((a, b) => a - b)
  return { finals, min: sorted[0], median: sorted[Math.floor(sorted.length / 2)], max: sorted.at(-1), lostMedian: RACERS - sorted[Math.floor(sorted.length / 2)], failedRequests: failed }
}

function version (name) {
  try { return require(`${name}/package.json`).version } catch { return null }
}

const server = await startMongoServer()
const client = new MongoClient(server.url)
const results = []
try {
  for (const [name, create] of Object.entries(CONTENDERS)) {
    const collection = client.db('bench').collection(name.replace(/\W+/g, '_'))
    const app = await create(collection, client)
    routes(app)
    await app.ready()
    results.push({ contender: name, commands: await commandsPerRequest(server, app), increments: await lostIncrements(app) })
    await app.close()
  }
} finally {
  await client.close()
  await server.close()
}

const scenarios = Object.keys(SCENARIOS)
const describe = ({ commands }) => Object.entries(commands).map(([n, c]) => `${c === 1 ? '' : c + '×'}${n}`).join(' + ') || '–'
const table = [
  `| contender | ${scenarios.join(' | ')} | increments of ${RACERS} (min / median / max of ${REPEATS}) |`,
  `|---|${scenarios.map(() => '---:').join('|')}|---:|`,
  ...results.map((r) => `| ${r.contender} | ${scenarios.map((s) => `${r.commands[s].perRequest} (${describe(r.commands[s])})`).join(' | ')} | ${r.increments.min} / ${r.increments.median} / ${r.increments.max} |`)
].join('\n')
console.log(`commands per request and lost increments, MongoDB wire-protocol test server\n\n${table}\n`)
mkdirSync(new URL('./results/', import.meta.url), { recursive: true })
writeFileSync(new URL('./results/mongo-commands.json', import.meta.url), JSON.stringify({
  date: new Date().toISOString(),
  node: process.version,
  versions: { mongodb: version('mongodb'), 'connect-mongo': version('connect-mongo'), '@fastify/session': version('@fastify/session') },
  requestsPerScenario: REQUESTS,
  results,
  table
}, null, 2) + '\n')

// One benchmark server, run in its own child process so its CPU time can be measured
// apart from the load generator:  node server.mjs <contender>
// It listens on 127.0.0.1, port 0, and reports the port to the parent over IPC.
// Redis contenders connect to 127.0.0.1:$REDIS_PORT, PostgreSQL ones to 127.0.0.1:$PG_PORT,
// Memcached ones to 127.0.0.1:$MEMCACHED_PORT.
import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify from 'fastify'

const SECRET = 'benchmark-secret-benchmark-secret-0123456789'
const RACE_KEYS = 100
const contender = process.argv[2]

const increment = (s) => s.set('n', (s.get('n') ?? 0) + 1)

async function redisClient () {
  const { Redis } = await import('ioredis')
  return new Redis({ host: '127.0.0.1', port: Number(process.env.REDIS_PORT) })
}

// Statements sent to PostgreSQL, counted on the way through: queries per request is a
// figure of its own (each costs a round trip and server CPU this process does not see).
let queries = 0
async function pgPool () {
  const { default: pg } = await import('pg')
  const pool = new pg.Pool({ host: '127.0.0.1', port: Number(process.env.PG_PORT), user: 'postgres', database: 'postgres', max: 20 })
  // The pool as each library is handed it, with every statement counted: query() takes a
  // text or pg's { name, text, values }, and connect() is there as on any pg.Pool (by it
  // PostgresStore knows it may send named prepared statements, as it does for its users).
  return { query: (...args) => { queries++; return pool.query(...args) }, connect: () => pool.connect() }
}

// A directory of this server's own for the file stores, removed when it exits.
function sessionDir () {
  const dir = mkdtempSync(join(tmpdir(), `bench-${contender}-`))
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }))
  return dir
}

// The library under test, from the build output (CommonJS: module.exports is the plugin);
// another build's for the *-previous diagnostics.
async function sessions (app, options) {
  const dist = contender.endsWith('-previous') ? `${process.env.PREVIOUS_DIST}/index.js` : '../../dist/index.js'
  const { default: fastifySessions } = await import(dist)
  await app.register(fastifySessions, { secret: SECRET, ...options(fastifySessions) })
}

async function fastifySession (app, store) {
  const { default: cookie } = await import('@fastify/cookie')
  const { default: session } = await import('@fastify/session')
  await app.register(cookie)
  // Same semantics as fastify-sessions: no record for untouched sessions, and a read-only
  // request writes nothing (its default rolling: true would rewrite the record on every request).
  await app.register(session, { secret: SECRET, saveUninitialized: false, rolling: false, cookie: { secure: false }, store })
}

// What each library's idiomatic code looks like for the scenarios' routes.
const fastifySessionsApi = {
  counter: (req) => req.session.update(increment),
  login: async (req) => { await req.session.regenerate(); req.session.set('user', 'ada') }
}
const getSetApi = {
  counter: (req) => increment(req.session),
  // @fastify/session replaces request.session on regenerate; secure-session clears it in place.
  login: async (req) => { await req.session.regenerate(); req.session.set('user', 'ada') }
}

// Diagnostic only: replaces the AES-256-GCM seal and unseal of the build under test with
// libsodium's secretbox, the cipher @fastify/secure-session uses (one key, no rotation, no
// cookie-name binding), so that one run shows how much of the CookieStore's write overhead
// is node:crypto's cipher and how much is everything else. The compiled sealer calls these
// through the module object, so replacing the exports is enough.
async function sodiumCipher () {
  const { createRequire } = await import('node:module')
  const require = createRequire(import.meta.url)
  const sodium = require('sodium-native')
  const cipher = require('../../dist/crypto/seal.js')
  const key = Buffer.alloc(sodium.crypto_secretbox_KEYBYTES)
  sodium.randombytes_buf(key)
  const NONCE = sodium.crypto_secretbox_NONCEBYTES
  const MAC = sodium.crypto_secretbox_MACBYTES
  cipher.seal = (ring, context, plaintext) => {
    const message = Buffer.from(plaintext)
    const out = Buffer.allocUnsafe(NONCE + MAC + message.length)
    sodium.randombytes_buf(out.subarray(0, NONCE))
    sodium.crypto_secretbox_easy(out.subarray(NONCE), message, out.subarray(0, NONCE), key)
    return out.toString('base64url')
  }
  cipher.unseal = (ring, context, sealed) => {
    const box = Buffer.from(sealed, 'base64url')
    if (box.length < NONCE + MAC) return { ok: false, reason: 'malformed' }
    const plaintext = Buffer.allocUnsafe(box.length - NONCE - MAC)
    const ok = sodium.crypto_secretbox_open_easy(plaintext, box.subarray(NONCE), box.subarray(0, NONCE), key)
    return ok ? { ok: true, plaintext, keyId: 'sodium', current: true } : { ok: false, reason: 'authentication failed' }
  }
}

const setups = {
  bare: { api: null, async register () {} },
  'sessions-memory': { api: fastifySessionsApi, register: (app) => sessions(app, (lib) => ({ store: new lib.MemoryStore() })) },
  'sessions-cookie': { api: fastifySessionsApi, register: (app) => sessions(app, (lib) => ({ store: new lib.CookieStore() })) },
  'sessions-cookie-sodium': {
    api: fastifySessionsApi,
    async register (app) {
      await sodiumCipher()
      await sessions(app, (lib) => ({ store: new lib.CookieStore() }))
    }
  },
  'sessions-redis': {
    api: fastifySessionsApi,
    async register (app) {
      const client = await redisClient()
      await sessions(app, (lib) => ({ store: new lib.RedisStore({ client, prefix: 'bench:fs:' }) }))
    }
  },
  'sessions-postgres': {
    api: fastifySessionsApi,
    async register (app) {
      const pool = await pgPool()
      await sessions(app, (lib) => ({ store: new lib.PostgresStore({ pool, table: 'bench_fs', createTable: true }) }))
    }
  },
  // For benchmarks/locking.mjs: the two conflict policies side by side.
  'sessions-merge': { api: fastifySessionsApi, register: (app) => sessions(app, (lib) => ({ store: new lib.MemoryStore(), conflict: 'merge' })) },
  'sessions-overwrite': { api: fastifySessionsApi, register: (app) => sessions(app, (lib) => ({ store: new lib.MemoryStore(), conflict: 'overwrite' })) },
  'fastify-session': { api: getSetApi, register: (app) => fastifySession(app, undefined) },
  'fastify-session-redis': {
    api: getSetApi,
    async register (app) {
      const { RedisStore } = await import('connect-redis')
      await fastifySession(app, new RedisStore({ client: await redisClient(), prefix: 'bench:cr:' }))
    }
  },
  'sessions-memcached': {
    api: fastifySessionsApi,
    async register (app) {
      const { default: memjs } = await import('memjs')
      const client = memjs.Client.create(`127.0.0.1:${process.env.MEMCACHED_PORT}`, { logger: { log () {} } })
      await sessions(app, (lib) => ({ store: new lib.MemcachedStore({ client, prefix: 'bench:fs:' }) }))
    }
  },
  'fastify-session-memcached': {
    api: getSetApi,
    async register (app) {
      const { default: connectMemcached } = await import('connect-memcached')
      const { default: session } = await import('@fastify/session')
      const MemcachedStore = connectMemcached(session)
      await fastifySession(app, new MemcachedStore({ hosts: [`127.0.0.1:${process.env.MEMCACHED_PORT}`], prefix: 'bench:cm:' }))
    }
  },
  'sessions-file': {
    api: fastifySessionsApi,
    register: (app) => sessions(app, (lib) => ({ store: new lib.FileStore({ dir: sessionDir() }) }))
  },
  'fastify-session-file': {
    api: getSetApi,
    async register (app) {
      const { default: fileStore } = await import('session-file-store')
      const { default: session } = await import('@fastify/session')
      const FileStore = fileStore(session)
      await fastifySession(app, new FileStore({ path: sessionDir(), logFn () {} }))
    }
  },
  'fastify-session-pg': {
    api: getSetApi,
    async register (app) {
      const { default: connectPgSimple } = await import('connect-pg-simple')
      const { default: session } = await import('@fastify/session')
      const PgStore = connectPgSimple(session)
      await fastifySession(app, new PgStore({ pool: await pgPool(), tableName: 'bench_cps', createTableIfMissing: true }))
    }
  },
  'secure-session': {
    api: getSetApi,
    async register (app) {
      const { default: secureSession } = await import('@fastify/secure-session')
      // A 32-byte key given directly: deriving one from a secret costs a slow pwhash at startup.
      const key = createHash('sha256').update(SECRET).digest()
      await app.register(secureSession, { key, cookie: { path: '/', httpOnly: true, secure: false } })
    }
  }
}
// Another build's stores: the same setup, with sessions() loading that build. Session ids
// are random, so the two RedisStores can share a prefix on one server.
for (const store of ['cookie', 'memory', 'redis']) setups[`sessions-${store}-previous`] = setups[`sessions-${store}`]

// The race routes wait 0-10 ms between loading the session (onRequest) and committing it
// (onSend), the same for every contender, so the 100 concurrent requests overlap for sure.
const raceDelay = () => sleep(Math.random() * 10)

const setup = setups[contender]
if (setup === undefined) throw new Error(`unknown contender ${contender}`)
const app = Fastify({ logger: false })
await setup.register(app)
const api = setup.api

let served = 0
app.addHook('onResponse', (request, reply, done) => { served++; done() })
// Counter increments acknowledged: what the sessions should add up to. Counted in the last
// onSend hook, after every session plugin has committed (in its own onSend or earlier),
// so a response cut off when the load stops still counts.
let acknowledged = 0
app.addHook('onSend', (request, reply, payload, done) => {
  if (request.routeOptions.url === '/counter' && reply.statusCode === 200) acknowledged++
  done(null, payload)
})

// The scenarios of benchmarks/run.mjs. Bare Fastify answers the same routes without sessions.
const BARE_COOKIE = `sid=${'x'.repeat(87)}; Path=/; HttpOnly; SameSite=Lax`
app.post('/seed', async (request, reply) => {
  if (api === null) return reply.header('set-cookie', BARE_COOKIE).send({ ok: true })
  request.session.set('n', 0)
  return { ok: true }
})
app.get('/anon', async () => ({ ok: true }))
app.get('/read', async (request) => ({ n: api === null ? null : request.session.get('n') }))
app.post('/counter', async (request) => { if (api !== null) await api.counter(request); return { ok: true } })
app.post('/login', async (request) => { if (api !== null) await api.login(request); return { ok: true } })
// The browser scenario's pages: one reads the session, one adds to a list of the last 10 visits.
app.get('/page', async (request) => ({ n: api === null ? null : request.session.get('n'), visits: api === null ? [] : request.session.get('visits') ?? [] }))
app.post('/visit', async (request) => {
  if (api !== null) request.session.set('visits', [...(request.session.get('visits') ?? []), `/item/${Math.floor(Math.random() * 1000)}`].slice(-10))
  return { ok: true }
})

// benchmarks/locking.mjs: plain get/set increments, and the lost-update races.
app.post('/write', async (request) => { increment(request.session); return { ok: true } })
app.post('/race/:key', async (request) => {
  await raceDelay()
  request.session.set(request.params.key, true)
  return { ok: true }
})
app.post('/incr', async (request) => {
  await raceDelay()
  increment(request.session)
  return { ok: true }
})
app.post('/incr-update', async (request) => {
  await raceDelay()
  await request.session.update(increment)
  return { ok: true }
})
app.get('/dump', async (request) => {
  if (api === null) return { keys: 0, n: null }
  let keys = 0
  for (let i = 0; i < RACE_KEYS; i++) if (request.session.get(`k${i}`) !== undefined) keys++
  return { keys, n: request.session.get('n') ?? null }
})

// Requests begun and not yet over (answered or cut off), and requests begun in the window.
// Counted as each request arrives, before any hook: a hook after a session plugin's async
// onRequest could subscribe to 'close' after a cut-off connection had already closed, and
// that request would stay in flight for ever (every window then waited out settled()).
let inFlight = 0
let begun = 0
app.server.on('request', (request, response) => {
  inFlight++
  begun++
  response.once('close', () => { inFlight-- })
})

// When the load stops, up to one request per connection is still under way: its queries
// would count, but not the request (it ends after the window, or is cut off). Queries per
// request are therefore counted over the requests begun in the window, once all of them are
// over; the CPU figures stay those of the window.
async function settled () {
  for (let waited = 0; inFlight > 0 && waited < 5000; waited += 10) await sleep(10)
}

// Server CPU over the measured window: user+system microseconds of this whole process.
let mark
const commands = {
  async start () { await settled(); served = 0; begun = 0; queries = 0; mark = process.cpuUsage(); return {} },
  async stop () {
    const cpu = process.cpuUsage(mark)
    const window = { cpuUs: cpu.user + cpu.system, served }
    await settled()
    return { ...window, queries, begun }
  },
  acknowledged () { return { acknowledged } }
}
process.on('message', async ({ id, cmd }) => process.send({ id, ...await commands[cmd]() }))
// Never outlive the parent.
process.on('disconnect', () => process.exit(0))

await app.listen({ host: '127.0.0.1', port: 0 })
process.send({ ready: true, port: app.server.address().port })

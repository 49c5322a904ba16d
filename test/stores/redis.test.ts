import t from 'tap'
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify'
import { Cluster, Redis, type RedisOptions } from 'ioredis'
import { storeKey } from '../../src/crypto/ids'
import fastifySessions, { RedisStore, type RedisStoreOptions, type SessionStore } from '../../src/index'
import { conformance } from '../../src/testing'
import { record, uniqueKey } from '../helpers/record'
import {
  cli, redisUnavailable, startCluster, startSentinel, startStandalone, waitFor,
  type ClusterSetup, type SentinelSetup, type Standalone
} from '../helpers/redis-servers'

const HOST = '127.0.0.1'
const SECRET = 'redis-store-test-secret-long-enough-0001'
const UNAVAILABLE = 'FST_SESS_STORE_UNAVAILABLE'

let sequence = 0
/** Each sub-test writes under its own prefix. */
function uniquePrefix (topology: string): string {
  return `test:${process.pid}:${topology}:${sequence++}:`
}

type Client = Redis | Cluster

/** Clients a test creates are disconnected when it ends; the store never closes them. */
function own<C extends Client> (t: tap.Test, client: C): C {
  t.teardown(() => client.disconnect())
  return client
}

function standaloneClient (port: number, extra: RedisOptions = {}): Redis {
  return new Redis({ host: HOST, port, ...extra })
}

// What makes a Sentinel client follow a failover quickly: it listens for
// +switch-master, and a write refused with READONLY reconnects and is resent.
function sentinelClient (setup: SentinelSetup, extra: RedisOptions = {}): Redis {
  return new Redis({
    sentinels: [{ host: HOST, port: setup.sentinelPort }],
    name: setup.name,
    failoverDetector: true,
    reconnectOnError: (err) => err.message.startsWith('READONLY') ? 2 : false,
    retryStrategy: () => 100,
    sentinelRetryStrategy: () => 100,
    ...extra
  })
}

/** The published conformance suite on one topology: each case on a client and a prefix of its own. */
function conformanceOn (t: tap.Test, topology: string, connect: () => Client): void {
  const clients = new WeakMap<SessionStore, Client>()
  conformance({
    test: (name, fn) => t.test(name, fn),
    name: `RedisStore ${topology}`,
    // Redis drops a record at its PEXPIREAT, on its own clock.
    clock: 'server',
    store: () => {
      const client = connect()
      const store = new RedisStore({ client, prefix: uniquePrefix(topology) })
      clients.set(store, client)
      return store
    },
    close: (store) => clients.get(store)?.disconnect()
  })
}

/** Calls per command since the server started, leaving out the INFO that asks. */
async function commandCalls (admin: Redis): Promise<Map<string, number>> {
  const calls = new Map<string, number>()
  for (const [, name, count] of (await admin.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    if (name !== 'info') calls.set(name, Number(count))
  }
  return calls
}

function callsSince (before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  const sent: Record<string, number> = {}
  for (const [name, count] of after) {
    if (count > (before.get(name) ?? 0)) sent[name] = count - (before.get(name) ?? 0)
  }
  return sent
}

async function buildApp (t: tap.Test, store: RedisStore, storeTimeout?: number): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(fastifySessions, { secret: SECRET, store, storeTimeout })
  app.get('/anon', async () => 'hello')
  app.post('/login', async (req) => {
    req.session.set('user', (req.query as { user?: string }).user ?? 'ada')
    return { ok: true }
  })
  app.get('/me', async (req) => ({ user: req.session.get('user') ?? null }))
  app.post('/bump', async (req) => {
    req.session.set('n', ((req.session.get('n') as number | undefined) ?? 0) + 1)
    return { n: req.session.get('n') }
  })
  await app.ready()
  t.teardown(() => app.close())
  return app
}

/** The session cookie value, `<id>.<signature>`. */
function cookieOf (res: LightMyRequestResponse): string {
  const found = res.cookies.find((c) => c.name === 'sid')
  if (found === undefined) throw new Error(`no session cookie (status ${res.statusCode}: ${res.body})`)
  return found.value
}

async function login (app: FastifyInstance, user = 'ada'): Promise<string> {
  return cookieOf(await app.inject({ method: 'POST', url: '/login', query: { user } }))
}

function withCookie (cookie: string): { cookie: string } {
  return { cookie: `sid=${cookie}` }
}

/** A problem with a response, or undefined when it is a success or a clean 503. */
function badResponse (res: LightMyRequestResponse): string | undefined {
  if (res.statusCode === 200) return undefined
  if (res.statusCode === 503 && res.json().code === UNAVAILABLE) return undefined
  return `${res.statusCode} ${res.body}`
}

// During a failover a write may also end in a clean 409: the new master can hold an older
// version than the one the request read (replication is asynchronous), and ioredis resends a
// write whose answer the switch cut off, which then finds its own version in place.
function conflict (res: LightMyRequestResponse): boolean {
  return res.statusCode === 409 && res.json().code === 'FST_SESS_CONFLICT'
}

function tracked (t: tap.Test): unknown[] {
  const rejections: unknown[] = []
  const onRejection = (reason: unknown): void => { rejections.push(reason) }
  process.on('unhandledRejection', onRejection)
  t.teardown(() => { process.off('unhandledRejection', onRejection) })
  return rejections
}

/** Starts a server setup now, for a test to await later; a failed start fails that test. */
function startEarly<S extends { stop (): Promise<void> }> (t: tap.Test, start: () => Promise<S>): Promise<S> {
  const started = start()
  // Stopped at the end of the file too, should the test that awaits it not run.
  t.teardown(async () => (await started.catch(() => undefined))?.stop())
  started.catch(() => {})
  return started
}

if (!redisUnavailable(t)) {
  // Each topology has servers of its own, and most of its time is waiting: for servers to
  // start (Sentinel above all), for records to expire, for a failover. They run together.
  t.jobs = 4
  const standalone = startEarly(t, startStandalone)
  const cluster = startEarly(t, startCluster)
  const sentinel = startEarly(t, startSentinel)
  const outage = startEarly(t, startStandalone)
  t.test('standalone', async (t) => standaloneTests(t, await standalone))
  t.test('cluster', async (t) => clusterTests(t, await cluster))
  t.test('sentinel', async (t) => sentinelTests(t, await sentinel))
  t.test('outage: a dead Redis gives 503 within storeTimeout, then traffic resumes', async (t) => outageTest(t, await outage))
  t.test('rejects bad options by name', optionTests)
}

async function standaloneTests (t: tap.Test, redis: Standalone): Promise<void> {
  const clients: Client[] = []
  const connect = (extra?: RedisOptions): Redis => {
    const client = standaloneClient(redis.port, extra)
    clients.push(client)
    return client
  }
  t.teardown(async () => {
    for (const client of clients) client.disconnect()
    await redis.stop()
  })
  const admin = connect()
  conformanceOn(t, 'standalone', () => standaloneClient(redis.port))
  scriptTests(t, connect(), admin)
  expiryTests(t, connect(), admin)
  encodingTests(t, connect(), admin)
  pluginTests(t, connect(), admin)
  timeoutTests(t, redis, connect)
}

function scriptTests (t: tap.Test, client: Redis, admin: Redis): void {
  t.test('after SCRIPT FLUSH, EVALSHA falls back to EVAL once', async (t) => {
    const store = new RedisStore({ client, prefix: uniquePrefix('noscript') })
    const key = uniqueKey()
    t.equal(await store.set(key, record({ v: 1 }, 1), 0), true)
    await admin.script('FLUSH')
    const before = await commandCalls(admin)
    t.equal(await store.set(key, record({ v: 2 }, 2), 1), true, 'write after the flush')
    t.equal(callsSince(before, await commandCalls(admin)).eval, 1, 'the script ran through EVAL')
    const cached = await commandCalls(admin)
    t.equal(await store.set(key, record({ v: 3 }, 3), 2), true)
    const { eval: evals, evalsha } = callsSince(cached, await commandCalls(admin))
    t.same({ evals, evalsha }, { evals: undefined, evalsha: 1 }, 'then EVALSHA again')
    await admin.script('FLUSH')
    const later = Date.now() + 30_000
    await store.touch(key, later)
    const read = await store.get(key)
    t.same([read?.data, read?.version, read?.expiresAt], [{ v: 3 }, 3, later], 'touch after a flush')
  })

  t.test('commands issued in one turn of the event loop leave in one write', async (t) => {
    const store = new RedisStore({ client, prefix: uniquePrefix('batch') })
    // A write first, so the script is cached and no NOSCRIPT fallback adds a round.
    await store.set(uniqueKey(), record({}, 1), 0)
    const stream = (client as unknown as { stream: import('node:stream').Writable }).stream
    let writes = 0
    const count = (): void => { writes++ }
    const original = { write: stream._write, writev: stream._writev }
    stream._write = function (...args) { count(); return original.write.apply(this, args) }
    stream._writev = function (...args) { count(); return original.writev?.apply(this, args) }
    t.teardown(() => { Object.assign(stream, { _write: original.write, _writev: original.writev }) })
    const keys = Array.from({ length: 20 }, () => uniqueKey())
    const written = await Promise.all(keys.map((key, i) => store.set(key, record({ i }, 1), 0)))
    t.same(written, keys.map(() => true))
    t.equal(writes, 1, '20 writes, one socket write')
    writes = 0
    const read = await Promise.all(keys.map((key) => store.get(key)))
    t.same(read.map((r) => r?.data), keys.map((_, i) => ({ i })))
    t.equal(writes, 1, '20 reads, one socket write')
    t.equal(stream.writableCorked, 0, 'nothing is held back afterwards')
  })

  t.test('other Redis errors reject', async (t) => {
    const prefix = uniquePrefix('wrongtype')
    const store = new RedisStore({ client, prefix })
    const key = uniqueKey()
    await admin.set(prefix + key, 'not a session')
    await t.rejects(store.set(key, record({}), 0), /WRONGTYPE/)
    await t.rejects(store.touch(key, Date.now() + 1000), /WRONGTYPE/)
    await t.rejects(store.get(key), /WRONGTYPE/)
  })
}

function expiryTests (t: tap.Test, client: Redis, admin: Redis): void {
  t.test('every write sets an absolute expiry at expiresAt; touch moves it', async (t) => {
    const prefix = uniquePrefix('ttl')
    const store = new RedisStore({ client, prefix })
    const key = uniqueKey()
    const written = record({ a: 1 }, 1, 60_000)
    await store.set(key, written, 0)
    t.equal(await admin.call('PEXPIRETIME', prefix + key), written.expiresAt)
    t.ok(await admin.pttl(prefix + key) > 0)
    const updated = record({ a: 2 }, 2, 120_000)
    await store.set(key, updated, 1)
    t.equal(await admin.call('PEXPIRETIME', prefix + key), updated.expiresAt, 'a rewrite sets the new expiry')
    const later = Date.now() + 300_000
    await store.touch(key, later)
    t.equal(await admin.call('PEXPIRETIME', prefix + key), later)
    t.equal(await admin.hget(prefix + key, 'e'), String(later), 'stored expiresAt follows')
    await store.touch(key, Date.now() - 1)
    t.equal(await admin.exists(prefix + key), 0, 'a touch into the past ends the record')
    await store.touch(key, later)
    t.equal(await admin.exists(prefix + key), 0, 'a touch never creates a key, not even one without data')
  })

  t.test('an expiry Redis cannot take writes nothing; fractions round up', async (t) => {
    const prefix = uniquePrefix('badexpiry')
    const store = new RedisStore({ client, prefix })
    const key = uniqueKey()
    await t.rejects(store.set(key, { ...record({}), expiresAt: Number.NaN }, 0), /whole epoch milliseconds/)
    t.equal(await admin.exists(prefix + key), 0, 'no record without an expiry')
    const written = { ...record({}), expiresAt: Date.now() + 60_000.25 }
    await store.set(key, written, 0)
    t.equal(await admin.call('PEXPIRETIME', prefix + key), Math.ceil(written.expiresAt))
    await t.rejects(store.touch(key, Number.POSITIVE_INFINITY), /whole epoch milliseconds/)
    t.equal(await admin.call('PEXPIRETIME', prefix + key), Math.ceil(written.expiresAt), 'expiry unchanged')
  })
}

function encodingTests (t: tap.Test, client: Redis, admin: Redis): void {
  t.test('the prefix is honoured; the default is sess:', async (t) => {
    const key = uniqueKey()
    const plain = new RedisStore({ client })
    await plain.set(key, record({}), 0)
    t.equal(await admin.exists(`sess:${key}`), 1)
    await plain.destroy(key)
    t.equal(await admin.exists(`sess:${key}`), 0, 'destroy removes the key')
    const custom = new RedisStore({ client, prefix: 'custom:{app}:' })
    await custom.set(key, record({}), 0)
    t.equal(await admin.exists(`custom:{app}:${key}`), 1)
    t.equal(await plain.get(key), undefined, 'another prefix is another namespace')
    await custom.destroy(key)
  })

  t.test('a custom serializer encodes the data', async (t) => {
    const used = { stringify: 0, parse: 0 }
    const serializer = {
      stringify: (data: Record<string, unknown>) => { used.stringify++; return 'b64:' + Buffer.from(JSON.stringify(data)).toString('base64') },
      parse: (text: string) => { used.parse++; return JSON.parse(Buffer.from(text.slice(4), 'base64').toString()) }
    }
    const prefix = uniquePrefix('serializer')
    const store = new RedisStore({ client, prefix, serializer })
    const key = uniqueKey()
    await store.set(key, record({ secret: 'plain text' }), 0)
    const raw = await admin.hget(prefix + key, 'd') as string
    t.match(raw, /^b64:/)
    t.notMatch(raw, /plain text/)
    t.same((await store.get(key))?.data, { secret: 'plain text' })
    t.same(used, { stringify: 1, parse: 1 })
  })

  t.test('the default serializer reads an own __proto__ key back as data and touches no prototype', async (t) => {
    const prefix = uniquePrefix('poison')
    const store = new RedisStore({ client, prefix })
    const key = uniqueKey()
    const expiresAt = String(Date.now() + 60_000)
    await admin.hset(prefix + key, { v: '1', c: '1', e: expiresAt, d: '{"__proto__":{"polluted":true}}' })
    const data = (await store.get(key))?.data as Record<string, unknown>
    t.same(Object.getOwnPropertyDescriptor(data, '__proto__')?.value, { polluted: true })
    t.equal(Object.getPrototypeOf(data), Object.prototype)
    t.equal(({} as Record<string, unknown>).polluted, undefined)
  })

  t.test('a value the serializer cannot read is an unusable record, not a failure', async (t) => {
    const prefix = uniquePrefix('truncated')
    const store = new RedisStore({ client, prefix })
    const key = uniqueKey()
    await admin.hset(prefix + key, { v: '1', c: '1', e: String(Date.now() + 60_000), d: '{"a":' })
    await t.rejects(store.get(key), { code: 'FST_SESS_UNUSABLE_RECORD' })
  })
}

function pluginTests (t: tap.Test, client: Redis, admin: Redis): void {
  t.test('through the plugin: keys are digests, values hold no id, every key expires', async (t) => {
    const prefix = uniquePrefix('plugin')
    const app = await buildApp(t, new RedisStore({ client, prefix }))
    const cookie = await login(app)
    const [id, signature] = cookie.split('.')
    const keys = await admin.keys(`${prefix}*`)
    t.same(keys, [prefix + storeKey(id)])
    const stored = Object.values(await admin.hgetall(keys[0])).join('\n') + keys[0]
    t.notOk(stored.includes(id), 'no raw id in Redis')
    t.notOk(stored.includes(signature), 'no signature in Redis')
    t.ok(await admin.pttl(keys[0]) > 0)
    const me = await app.inject({ url: '/me', headers: withCookie(cookie) })
    t.same(me.json(), { user: 'ada' })
  })

  t.test('anonymous requests send no command; read-only requests write nothing', async (t) => {
    const app = await buildApp(t, new RedisStore({ client, prefix: uniquePrefix('quiet') }))
    const cookie = await login(app)
    const before = await commandCalls(admin)
    for (let i = 0; i < 10; i++) {
      t.equal((await app.inject('/anon')).statusCode, 200)
      t.same((await app.inject('/me')).json(), { user: null })
    }
    t.same(callsSince(before, await commandCalls(admin)), {}, 'no command at all')
    const reading = await commandCalls(admin)
    for (let i = 0; i < 5; i++) {
      t.same((await app.inject({ url: '/me', headers: withCookie(cookie) })).json(), { user: 'ada' })
    }
    t.same(callsSince(reading, await commandCalls(admin)), { hmget: 5 }, 'one read per request, no write')
  })
}

function timeoutTests (t: tap.Test, redis: Standalone, connect: () => Redis): void {
  t.test('storeTimeout bounds every request on a Redis that stopped answering; it recovers without a restart', async (t) => {
    const client = connect()
    await client.ping()
    const app = await buildApp(t, new RedisStore({ client, prefix: uniquePrefix('frozen') }), 0.2)
    const cookie = await login(app)
    process.kill(redis.server.pid, 'SIGSTOP')
    const results = await Promise.all([
      app.inject({ url: '/me', headers: withCookie(cookie) }),
      app.inject({ method: 'POST', url: '/bump', headers: withCookie(cookie) }),
      app.inject({ method: 'POST', url: '/login' })
    ]).finally(() => process.kill(redis.server.pid, 'SIGCONT'))
    for (const res of results) t.same([res.statusCode, res.json().code], [503, UNAVAILABLE])
    t.same((await app.inject({ url: '/me', headers: withCookie(cookie) })).json(), { user: 'ada' }, 'works again once Redis answers')
    t.same((await app.inject({ method: 'POST', url: '/bump', headers: withCookie(cookie) })).json(), { n: 1 })
  })

  t.test('close() leaves the given client open', async (t) => {
    const client = connect()
    const store = new RedisStore({ client })
    await store.close()
    t.equal(await client.ping(), 'PONG')
  })
}

async function clusterTests (t: tap.Test, cluster: ClusterSetup): Promise<void> {
  t.teardown(() => cluster.stop())
  conformanceOn(t, 'cluster', () => new Cluster(cluster.nodes))

  t.test('cluster: records spread over the masters; NOSCRIPT is handled per node', async (t) => {
    const client = own(t, new Cluster(cluster.nodes))
    const prefix = uniquePrefix('cluster')
    const store = new RedisStore({ client, prefix })
    const keys = Array.from({ length: 30 }, uniqueKey)
    for (const key of keys) t.equal(await store.set(key, record({ key }), 0), true)
    const counts = await Promise.all(cluster.nodes.map(async ({ port }) => Number(await cli(port, 'dbsize'))))
    t.ok(counts.filter((n) => n > 0).length >= 2, `keys on several nodes: ${counts.join(', ')}`)
    await Promise.all(cluster.nodes.map(({ port }) => cli(port, 'script', 'flush')))
    for (const key of keys) t.equal(await store.set(key, record({ key, again: true }, 2), 1), true)
    await Promise.all(cluster.nodes.map(({ port }) => cli(port, 'script', 'flush')))
    for (const key of keys) await store.touch(key, Date.now() + 90_000)
    for (const key of keys) t.same((await store.get(key))?.data, { key, again: true })
  })
}

async function sentinelTests (t: tap.Test, setup: SentinelSetup): Promise<void> {
  t.teardown(() => setup.stop())
  conformanceOn(t, 'sentinel', () => sentinelClient(setup))
  t.test('sentinel: sessions survive a failover; requests during it succeed or fail cleanly', (t) => failoverTest(t, setup))
}

async function failoverTest (t: tap.Test, setup: SentinelSetup): Promise<void> {
  const client = own(t, sentinelClient(setup))
  client.on('error', () => {}) // connection drops during the switch are expected
  const prefix = uniquePrefix('failover')
  const app = await buildApp(t, new RedisStore({ client, prefix }), 1)
  const users = Array.from({ length: 20 }, (_, i) => `user${i}`)
  const cookies = await Promise.all(users.map((user) => login(app, user)))
  // Replication is asynchronous: only writes a replica acknowledged survive a failover.
  t.equal(await cli(setup.master.port, 'wait', '1', '5000'), '1')
  const failover = cli(setup.sentinelPort, 'sentinel', 'failover', setup.name)
  const outcome = await trafficDuringFailover(app, cookies, setup)
  t.equal(await failover, 'OK')
  t.comment(`responses during the failover: ${JSON.stringify(outcome.statuses)}`)
  t.ok(outcome.switched, 'Sentinel switched the master')
  t.ok(outcome.writesAfter >= 20, `writes succeed on the new master (${outcome.writesAfter})`)
  t.same(outcome.bad, [], 'every request succeeded or failed cleanly: 503 FST_SESS_STORE_UNAVAILABLE, or 409 FST_SESS_CONFLICT for a write')
  t.equal(await setup.currentMaster(), setup.replica.port)
  for (const [i, cookie] of cookies.entries()) {
    const res = await app.inject({ url: '/me', headers: withCookie(cookie) })
    t.same(res.json(), { user: users[i] }, `session ${i} readable after the failover`)
  }
  const fresh = (await login(app, 'after')).split('.')[0]
  t.equal(await cli(setup.replica.port, 'exists', prefix + storeKey(fresh)), '1', 'new writes land on the new master')
}

// Done when Sentinel names another master and the old one already serves as its replica,
// so the traffic after this point has to follow the switch.
async function demoted (setup: SentinelSetup, oldMaster: number): Promise<boolean> {
  if (await setup.currentMaster() === oldMaster) return false
  // Sentinel kills client connections while it reconfigures the old master: a failed
  // look-up only means "not yet", and the loop asks again.
  const role = await cli(oldMaster, 'role').catch(() => '')
  return role.startsWith('slave')
}

async function trafficDuringFailover (app: FastifyInstance, cookies: string[], setup: SentinelSetup) {
  const oldMaster = await setup.currentMaster()
  const deadline = Date.now() + 30_000
  const bad: string[] = []
  const statuses: Record<number, number> = {}
  let switched = false
  let writesAfter = 0
  for (let i = 0; i < 20_000 && Date.now() < deadline && writesAfter < 20; i++) {
    const headers = withCookie(cookies[i % cookies.length])
    const write = i % 2 === 1
    const res = await app.inject(write ? { method: 'POST', url: '/bump', headers } : { url: '/me', headers })
    const problem = write && conflict(res) ? undefined : badResponse(res)
    if (problem !== undefined) bad.push(problem)
    statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1
    if (switched && write && res.statusCode === 200) writesAfter++
    switched ||= await demoted(setup, oldMaster)
  }
  return { switched, writesAfter, bad, statuses }
}

async function outageTest (t: tap.Test, redis: Standalone): Promise<void> {
  const rejections = tracked(t)
  t.teardown(() => redis.stop())
  const client = own(t, standaloneClient(redis.port, { maxRetriesPerRequest: 1, retryStrategy: () => 100 }))
  client.on('error', () => {}) // refused connections during the outage are expected
  const app = await buildApp(t, new RedisStore({ client, prefix: uniquePrefix('outage') }), 0.5)
  const cookies = await Promise.all(['a', 'b', 'c'].map((user) => login(app, user)))
  const traffic = { stop: false, bad: [] as string[], count: 0 }
  // Resolves once the traffic has made `count` more requests.
  let onRequest = (): void => {}
  const more = (count: number): Promise<void> => new Promise((resolve) => {
    const until = traffic.count + count
    onRequest = () => { if (traffic.count >= until) resolve() }
  })
  const running = (async () => {
    for (let i = 0; !traffic.stop && i < 10_000; i++) {
      const problem = badResponse(await app.inject({ url: '/me', headers: withCookie(cookies[i % 3]) }))
      if (problem !== undefined) traffic.bad.push(problem)
      traffic.count++
      onRequest()
    }
  })()
  await more(10)
  await redis.server.kill('SIGKILL')
  // Each request to the dead server may take up to storeTimeout: a few are enough.
  await more(3)
  traffic.stop = true
  await running
  t.ok(traffic.count >= 13, 'requests before and after the crash')
  t.same(traffic.bad, [], 'traffic across the crash: 200 or a clean 503')
  await checkDown(t, app, cookies)
  await redis.server.restart()
  await waitFor('the client to reconnect', async () => (await app.inject({ method: 'POST', url: '/login' })).statusCode === 200)
  const cookie = await login(app, 'back')
  t.same((await app.inject({ url: '/me', headers: withCookie(cookie) })).json(), { user: 'back' }, 'new sessions work again')
  const old = await app.inject({ url: '/me', headers: withCookie(cookies[0]) })
  t.same([old.statusCode, old.json()], [200, { user: null }], 'a session lost with the server starts afresh')
  t.same(rejections, [], 'no unhandled rejection')
}

async function checkDown (t: tap.Test, app: FastifyInstance, cookies: string[]): Promise<void> {
  for (const cookie of cookies) {
    const res = await app.inject({ url: '/me', headers: withCookie(cookie) })
    t.equal(res.statusCode, 503)
    t.equal(res.json().code, UNAVAILABLE)
  }
  const created = await app.inject({ method: 'POST', url: '/login' })
  t.same([created.statusCode, created.json().code], [503, UNAVAILABLE], 'a new session cannot be stored')
  t.equal((await app.inject('/anon')).statusCode, 200, 'requests without a session still work')
}

async function optionTests (t: tap.Test): Promise<void> {
  const client = own(t, standaloneClient(1, { lazyConnect: true }))
  const bad: Array<[string, unknown]> = [
    ['options', null],
    ['client', {}],
    ['client', { client: { get: () => {} } }],
    ['prefix', { client, prefix: 5 }],
    ['serializer', { client, serializer: { stringify: JSON.stringify } }],
    ['serializer', { client, serializer: null }],
    ['commandTimeout', { client, commandTimeout: 2 }],
    ['prefx', { client, prefx: 'a:' }]
  ]
  for (const [i, [name, options]] of bad.entries()) {
    t.throws(() => new RedisStore(options as RedisStoreOptions), {
      code: 'FST_SESS_INVALID_OPTION', message: new RegExp(`"RedisStore ${name}"`)
    }, `bad ${name} #${i}`)
  }
  t.doesNotThrow(() => new RedisStore({ client, prefix: '' }))
  t.equal(client.status, 'wait', 'constructing a store sends nothing')
}

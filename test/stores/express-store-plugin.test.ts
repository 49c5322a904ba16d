import t from 'tap'
import type session from 'express-session'
import { storeKey } from '../../src/crypto/ids'
import { CookieStore, fromExpressStore, MemoryStore as NativeStore, type ExpressStore } from '../../src/index'
import { build } from '../helpers/app'
import { logLines, sessionWarnings } from '../helpers/log-lines'
import { revocationScenarios } from '../helpers/logout-everywhere'
import { dump, login, me, post, routes, together } from '../helpers/store-plugin'
import {
  ConnectRedis, MemoryStore, memoryBackend, PGStore, postgresBackend, redisBackend, type ExpressBackend
} from '../helpers/express-stores'
import { postgresUnavailable, startPostgres } from '../helpers/postgres-server'
import { redisUnavailable, startStandalone } from '../helpers/redis-servers'
import { Redis } from 'ioredis'

// fromExpressStore through the plugin, on memorystore, connect-redis 8 on a real redis-server
// and connect-pg-simple on a real PostgreSQL: sign-in, reads, update() within one process,
// logout everywhere by stamps, expiry, what the backend holds; then registration (the error
// for an unadapted store, the warning for an adapted one) and stores that fail or misbehave.

const UNAVAILABLE = 'FST_SESS_STORE_UNAVAILABLE'

function idOf (cookie: string): string {
  return cookie.slice('sid='.length).split('.')[0]
}

async function flows (t: tap.Test, backend: ExpressBackend): Promise<void> {
  const { name } = backend
  // The revocation scenarios share one store: their sessions have keys of their own.
  const shared = await backend.make()

  t.test(`${name}: sign-in, reads, 100 concurrent update() increments exact and concurrent writes merged, within one process`, async (t) => {
    const app = await build({ store: fromExpressStore((await backend.make()).store) }, routes)
    t.teardown(() => app.close())
    const cookie = await login(app, 'ada')
    for (let i = 0; i < 3; i++) t.same((await me(app, cookie)).json(), { user: 'ada' })
    const results = await together(100, () => post(app, '/increment', cookie))
    t.same(results.map((r) => r.statusCode).filter((s) => s !== 200), [])
    t.equal((await dump(app, cookie)).counter, 100)
    const sets = await together(50, (i) => post(app, `/set/k${i}`, cookie))
    t.same(sets.map((r) => r.statusCode).filter((s) => s !== 200), [])
    t.equal(Object.keys(await dump(app, cookie)).filter((k) => /^k\d+$/.test(k)).length, 50, '50 concurrent writes of distinct keys merged')
  })

  t.test(`${name}: the backend holds digests and the record, never a session id`, async (t) => {
    const kept = await backend.make()
    const app = await build({ store: fromExpressStore(kept.store) }, routes)
    t.teardown(() => app.close())
    const cookie = await login(app, 'plain-user-name')
    const held = await kept.held()
    t.same([...held.keys()], [storeKey(idOf(cookie))], 'one key: the digest of the id')
    const text = [...held.values()].join('')
    t.notOk(text.includes(idOf(cookie)) || text.includes(cookie.split('.')[1]), 'no id, no signature in the value')
    const stored = JSON.parse(text) as Record<string, unknown>
    t.match(stored, { v: 1, c: Number, e: Number, d: { user: 'plain-user-name' }, cookie: { expires: String } })
  })

  t.test(`${name}: the backend expires the record at its expiresAt, and the app's clock ends it first`, async (t) => {
    const kept = await backend.make()
    const app = await build({ store: fromExpressStore(kept.store), idleTimeout: 120 }, routes)
    t.teardown(() => app.close())
    const cookie = await login(app)
    const key = storeKey(idOf(cookie))
    const { e } = JSON.parse(String((await kept.held()).get(key))) as { e: number }
    const left = await kept.secondsLeft(key)
    // connect-redis and connect-pg-simple round up to whole seconds.
    t.ok(left > (e - Date.now()) / 1000 - 2 && left <= (e - Date.now()) / 1000 + 1, `kept ${left} s, the record says ${(e - Date.now()) / 1000} s`)
    const now = Date.now
    t.capture(Date, 'now', () => now() + 121_000)
    t.same((await me(app, cookie)).json(), { user: null }, 'past idleTimeout: over')
    if (!backend.appClock) t.ok((await kept.held()).has(key), 'while the backend, on its own clock, still holds it')
  })

  t.test(`${name}: a read past a tenth of idleTimeout touches the record: the data kept, both expiries moved`, async (t) => {
    const kept = await backend.make()
    const app = await build({ store: fromExpressStore(kept.store), idleTimeout: 100 }, routes)
    t.teardown(() => app.close())
    const cookie = await login(app)
    const key = storeKey(idOf(cookie))
    const before = JSON.parse(String((await kept.held()).get(key))) as { e: number }
    const now = Date.now
    t.capture(Date, 'now', () => now() + 20_000)
    t.same((await me(app, cookie)).json(), { user: 'ada' })
    const after = JSON.parse(String((await kept.held()).get(key))) as { e: number }
    t.ok(after.e >= before.e + 20_000, `the record's expiry moved by the 20 s that passed (${after.e - before.e} ms)`)
    t.same({ ...after, e: 0, cookie: null }, { ...before, e: 0, cookie: null }, 'version, times and data as they were')
    const left = await kept.secondsLeft(key)
    t.ok(left > 98 && left <= 101, `the backend keeps it ${left} s more, the whole idleTimeout`)
    t.capture(Date, 'now', () => now() + 110_000)
    t.same((await me(app, cookie)).json(), { user: 'ada' }, 'alive past the first idle deadline')
  })

  t.test(`${name}: a value the adapter did not write gives a fresh session and a warn line`, async (t) => {
    const kept = await backend.make()
    const { lines, logger } = logLines('warn')
    const app = await build({ store: fromExpressStore(kept.store) }, routes, { logger })
    t.teardown(() => app.close())
    const cookie = await login(app)
    const foreign = { cookie: { expires: new Date(Date.now() + 60_000).toISOString(), originalMaxAge: 60_000, maxAge: 60_000 }, user: 'ada' }
    await new Promise<void>((resolve, reject) => kept.store.set(storeKey(idOf(cookie)), foreign, (err) => err ? reject(err) : resolve()))
    const before = sessionWarnings(lines).length
    t.same((await me(app, cookie)).json(), { user: null })
    t.equal(sessionWarnings(lines).length, before + 1, 'one warn line')
    t.notOk((await kept.held()).has(storeKey(idOf(cookie))), 'and the value is deleted')
  })

  revocationScenarios(t, {
    name,
    counts: false,
    options: () => ({ store: fromExpressStore(shared.store), userKey: 'userId' })
  })
}

t.test('memorystore', async (t) => flows(t, memoryBackend()))

t.test('connect-redis 8 on a real redis-server', async (t) => {
  if (redisUnavailable(t)) return
  const server = await startStandalone()
  t.teardown(() => server.stop())
  const client = new Redis({ host: '127.0.0.1', port: server.port })
  t.teardown(() => client.disconnect())
  await flows(t, redisBackend(client))
  registrationError(t, 'connect-redis', () => new ConnectRedis({ client }))
})

t.test('connect-pg-simple on a real PostgreSQL', async (t) => {
  if (postgresUnavailable(t)) return
  const server = await startPostgres()
  t.teardown(() => server.stop())
  const pool = server.pool()
  await flows(t, postgresBackend(pool))
  registrationError(t, 'connect-pg-simple', () => new PGStore({ pool, pruneSessionInterval: false }))

  t.test('connect-pg-simple: a query error answers 503 FST_SESS_STORE_UNAVAILABLE without its text', async (t) => {
    const { lines, logger } = logLines('error')
    // No table and no createTableIfMissing: every query fails.
    const store = new PGStore({ pool, tableName: 'missing', pruneSessionInterval: false })
    const app = await build({ store: fromExpressStore(store) }, routes, { logger })
    t.teardown(() => app.close())
    const res = await app.inject({ method: 'POST', url: '/login' })
    t.same([res.statusCode, res.json().code], [503, UNAVAILABLE])
    t.notMatch(res.body, /missing|relation/, 'the database error stays out of the reply')
    t.match(JSON.stringify(lines), /relation \\"missing\\" does not exist/, 'and is logged as the cause')
  })
})

function registrationError (t: tap.Test, name: string, make: () => ExpressStore): void {
  t.test(`${name} given as it is fails registration naming the option and the adapter`, async (t) => {
    await t.rejects(build({ store: make() as never }), {
      code: 'FST_SESS_EXPRESS_STORE', message: /invalid option "store": .*fromExpressStore\(store\)/
    })
  })
}

registrationError(t, 'memorystore', () => new MemoryStore({}))

t.test('an express-session store is refused as CookieStore revocations too', async (t) => {
  t.throws(() => new CookieStore({ revocations: new MemoryStore({}) as never }), { code: 'FST_SESS_EXPRESS_STORE', message: /"CookieStore revocations"/ })
})

t.test('a store whose get() and destroy() take a callback is refused without express-session\'s Store', async (t) => {
  const bare = { get (_sid: string, _cb: unknown) {}, set (_sid: string, _s: unknown, _cb: unknown) {}, destroy (_sid: string, _cb: unknown) {} }
  await t.rejects(build({ store: bare as never }), { code: 'FST_SESS_EXPRESS_STORE' })
  t.ok(fromExpressStore(bare), 'and accepted by the adapter')
})

t.test('fromExpressStore refuses what is not an express-session store, by name', async (t) => {
  const native = new NativeStore()
  t.teardown(() => native.close())
  for (const given of [native, null, { get () {}, set () {} }]) {
    t.throws(() => fromExpressStore(given as never), { code: 'FST_SESS_INVALID_OPTION', message: /"fromExpressStore store"/ })
  }
  t.throws(() => fromExpressStore(native as never), { message: /pass a fastify-sessions store as the store option directly/ })
})

t.test('an adapted store logs one warn line at registration; a native store none', async (t) => {
  const { lines, logger } = logLines('warn')
  const app = await build({ store: fromExpressStore(new MemoryStore({})) }, routes, { logger })
  t.teardown(() => app.close())
  const warnings = sessionWarnings(lines)
  t.equal(warnings.length, 1)
  t.match(warnings[0].msg, /within this process only .*fromExpressStore.*lose each other's writes.*RedisStore, PostgresStore/)
  await login(app)
  t.equal(sessionWarnings(lines).length, 1, 'once, not per request')
  const quiet = logLines('warn')
  const native = await build({}, routes, { logger: quiet.logger })
  t.teardown(() => native.close())
  t.same(sessionWarnings(quiet.lines), [])
})

t.test('an adapted store keeping CookieStore\'s revocation stamps logs the warning too', async (t) => {
  const { lines, logger } = logLines('warn')
  const app = await build({ store: new CookieStore({ revocations: fromExpressStore(new MemoryStore({})) }), userKey: 'user' }, routes, { logger })
  t.teardown(() => app.close())
  t.match(sessionWarnings(lines).map((line) => line.msg), [/within this process only/])
  const quiet = logLines('warn')
  const plain = await build({ store: new CookieStore() }, routes, { logger: quiet.logger })
  t.teardown(() => plain.close())
  t.same(sessionWarnings(quiet.lines), [])
})

/** memorystore with one of its methods made to misbehave as some stores do. */
class Misbehaving extends MemoryStore {
  readonly fault: 'twice' | 'throw' | 'reject' | 'reject-empty' | 'fail-later'

  constructor (fault: Misbehaving['fault']) {
    super({})
    this.fault = fault
  }

  override set (sid: string, sess: never, fn?: (err?: unknown) => void): void {
    if (this.fault === 'throw') throw new Error('set threw')
    super.set(sid, sess, fn)
    if (this.fault === 'twice') super.set(sid, sess, fn)
    if (this.fault === 'fail-later') setImmediate(() => fn?.(new Error('a late error')))
  }

  override get (sid: string, fn: (err: unknown, session?: session.SessionData | null) => void): void {
    if (this.fault === 'reject') return Promise.reject(new Error('get rejected')) as never
    if (this.fault === 'reject-empty') return Promise.reject(undefined) as never // eslint-disable-line prefer-promise-reject-errors
    super.get(sid, fn)
    if (this.fault === 'twice') super.get(sid, fn)
  }
}

t.test('a store that calls back twice or late is heard once; one that throws or rejects fails that call with 503', async (t) => {
  for (const fault of ['twice', 'fail-later'] as const) {
    const app = await build({ store: fromExpressStore(new Misbehaving(fault)) }, routes)
    t.teardown(() => app.close())
    const cookie = await login(app)
    t.same((await me(app, cookie)).json(), { user: 'ada' }, `${fault}: stored and read`)
    t.equal((await post(app, '/increment', cookie)).statusCode, 200)
    t.equal((await dump(app, cookie)).counter, 1, `${fault}: one increment`)
  }
  // A cookie signed with the same secret, so that the misbehaving store is asked for its session.
  const elsewhere = await build({}, routes)
  t.teardown(() => elsewhere.close())
  const cookie = await login(elsewhere)
  for (const fault of ['throw', 'reject', 'reject-empty'] as const) {
    const app = await build({ store: fromExpressStore(new Misbehaving(fault)) }, routes)
    t.teardown(() => app.close())
    const res = fault === 'throw' ? await app.inject({ method: 'POST', url: '/login' }) : await me(app, cookie)
    t.same([res.statusCode, res.json().code], [503, UNAVAILABLE], fault)
    t.notMatch(res.body, /threw|rejected/, 'the store\'s text stays out of the reply')
  }
})

t.test('a serializer that fails is a store failure: 503, and the session as it was', async (t) => {
  let failing = false
  const serializer = {
    stringify: (value: object) => { if (failing) throw new Error('cannot serialize'); return JSON.stringify(value) },
    parse: (text: string) => JSON.parse(text) as object
  }
  const app = await build({ store: fromExpressStore(new MemoryStore({ serializer })) }, routes)
  t.teardown(() => app.close())
  const cookie = await login(app)
  failing = true
  const res = await app.inject({ method: 'POST', url: '/login', query: { user: 'bob' }, headers: { cookie } })
  t.same([res.statusCode, res.json().code], [503, UNAVAILABLE])
  failing = false
  t.same((await me(app, cookie)).json(), { user: 'ada' })
})

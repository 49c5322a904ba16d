import t from 'tap'
import Fastify from 'fastify'
import fastifySessions, { CookieStore, MemoryStore } from '../src/index'
import { resolveOptions, DEFAULT_IDLE_TIMEOUT, DEFAULT_ABSOLUTE_TIMEOUT } from '../src/options'
import { build, SECRET } from './helpers/app'

const valid = { secret: SECRET }

t.test('defaults', async (t) => {
  const o = resolveOptions(valid)
  t.teardown(() => o.store.close?.())
  t.same(o.secrets, [SECRET])
  t.ok(o.store instanceof MemoryStore)
  t.equal(o.ownsStore, true)
  t.equal(o.cookieName, 'sid')
  t.same(o.cookie, { path: '/', domain: undefined, httpOnly: true, secure: 'auto', sameSite: 'lax', partitioned: false, maxAge: undefined })
  t.equal(o.idleMs, DEFAULT_IDLE_TIMEOUT * 1000)
  t.equal(o.absoluteMs, DEFAULT_ABSOLUTE_TIMEOUT * 1000)
  t.equal(o.saveUninitialized, false)
  t.equal(o.rolling, false)
  t.equal(o.conflict, 'merge')
  t.equal(o.encryptAtRest, false)
  t.same(o.crypto, { offload: 'never', threads: 1 })
  t.equal(o.storeTimeoutMs, 2000)
})

t.test('durations are seconds', async (t) => {
  const o = resolveOptions({ ...valid, idleTimeout: 90, absoluteTimeout: 3600, cookie: { maxAge: 60 } })
  t.teardown(() => o.store.close?.())
  t.equal(o.idleMs, 90_000)
  t.equal(o.absoluteMs, 3_600_000)
  t.equal(o.touchAfterMs, 9_000)
  t.equal(o.cookie.maxAge, 60)
})

t.test('a given store is used as is and not owned', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const o = resolveOptions({ ...valid, store, secret: [SECRET, SECRET + 'x'] })
  t.equal(o.store, store)
  t.equal(o.ownsStore, false)
  t.equal(o.secrets.length, 2)
})

const bad: Array<[string, unknown, RegExp]> = [
  ['no options', undefined, /"secret"/],
  ['options not an object', 'nope', /"options"/],
  ['missing secret', {}, /"secret"/],
  ['short secret', { secret: 'short' }, /"secret".*32/],
  ['empty secret list', { secret: [] }, /"secret"/],
  ['short previous secret', { secret: [SECRET, 'x'] }, /"secret": entry 1/],
  ['non-string secret', { secret: [SECRET, 42] }, /"secret"/],
  ['store without set', { ...valid, store: { get: async () => undefined, destroy: async () => {} } }, /"store".*set\(\)/],
  ['store not an object', { ...valid, store: 'redis' }, /"store"/],
  ['store with bad touch', { ...valid, store: { get () {}, set () {}, destroy () {}, touch: 1 } }, /"store".*touch/],
  ['stateless store without decode', { ...valid, store: { stateless: true, maxCookieBytes: 4096, encode () {} } }, /"store".*decode\(\)/],
  ['stateless store without a size limit', { ...valid, store: { stateless: true, encode () {}, decode () {} } }, /"store maxCookieBytes"/],
  ['stateless store with a bad size limit', { ...valid, store: { stateless: true, maxCookieBytes: 0, encode () {}, decode () {} } }, /"store maxCookieBytes"/],
  ['bad cookie name', { ...valid, cookieName: 'a b' }, /"cookieName"/],
  ['empty cookie name', { ...valid, cookieName: '' }, /"cookieName"/],
  ['cookie not an object', { ...valid, cookie: [] }, /"cookie"/],
  ['unknown cookie option', { ...valid, cookie: { expires: new Date() } }, /"cookie.expires": is not a known option; use maxAge \(durations are in seconds\)/],
  ['misspelt cookie option', { ...valid, cookie: { httponly: false } }, /"cookie.httponly": is not a known option; did you mean "httpOnly"\?/],
  ['maxAge in milliseconds', { ...valid, cookie: { maxAge: 86_400_000 } }, /"cookie.maxAge": must be at most 34560000 seconds; durations are in seconds, not milliseconds/],
  ['maxAge no browser keeps', { ...valid, cookie: { maxAge: 1e21 } }, /"cookie.maxAge": must be at most 34560000/],
  ['storeTimeout not positive', { ...valid, storeTimeout: 0 }, /"storeTimeout"/],
  ['storeTimeout past what a timer can wait', { ...valid, storeTimeout: 3_000_000 }, /"storeTimeout": must be at most 2147483 seconds/],
  ['idle timeout past what a timer can wait', { ...valid, idleTimeout: 86_400_000_000 }, /"idleTimeout": must be at most/],
  ['misspelt option', { ...valid, absoluteTimout: 60 }, /"absoluteTimout": is not a known option; did you mean "absoluteTimeout"\?/],
  ['option of another case', { ...valid, cookiename: 'sid' }, /"cookiename".*did you mean "cookieName"/],
  ['unknown option with nothing close', { ...valid, frobnicate: true }, /"frobnicate": is not a known option$/],
  ['@fastify/session idGenerator', { ...valid, idGenerator: () => 'x' }, /"idGenerator".*256 random bits/],
  ['@fastify/session cookiePrefix', { ...valid, cookiePrefix: 's:' }, /"cookiePrefix".*cookieName/],
  ['@fastify/session algorithm', { ...valid, algorithm: 'sha512' }, /"algorithm".*HMAC-SHA256/],
  ['@fastify/secure-session key', { ...valid, key: Buffer.alloc(32) }, /"key".*use secret/],
  ['@fastify/secure-session sessionName', { ...valid, sessionName: 'session' }, /"sessionName".*use cookieName/],
  ['@fastify/secure-session expiry', { ...valid, expiry: 3600 }, /"expiry".*idleTimeout and absoluteTimeout/],
  ['express-session resave', { ...valid, resave: false }, /"resave".*only when it changed/],
  ['unknown crypto option', { ...valid, crypto: { thread: 2 } }, /"crypto.thread".*did you mean "threads"/],
  ['relative path', { ...valid, cookie: { path: 'app' } }, /"cookie.path"/],
  ['path with semicolon', { ...valid, cookie: { path: '/a;b' } }, /"cookie.path"/],
  ['bad domain', { ...valid, cookie: { domain: 'a b.com' } }, /"cookie.domain"/],
  ['unknown sameSite', { ...valid, cookie: { sameSite: 'sometimes' } }, /"cookie.sameSite".*'lax'/],
  ['secure not boolean', { ...valid, cookie: { secure: 'yes' } }, /"cookie.secure"/],
  ['httpOnly not boolean', { ...valid, cookie: { httpOnly: 1 } }, /"cookie.httpOnly"/],
  ['sameSite none without secure', { ...valid, cookie: { sameSite: 'none', secure: false } }, /"cookie.secure"/],
  ['partitioned without secure', { ...valid, cookie: { partitioned: true, secure: false } }, /"cookie.secure"/],
  ['negative maxAge', { ...valid, cookie: { maxAge: -1 } }, /"cookie.maxAge"/],
  ['negative idle timeout', { ...valid, idleTimeout: -5 }, /"idleTimeout"/],
  ['zero idle timeout', { ...valid, idleTimeout: 0 }, /"idleTimeout"/],
  ['NaN absolute timeout', { ...valid, absoluteTimeout: NaN }, /"absoluteTimeout"/],
  ['string timeout', { ...valid, absoluteTimeout: '1h' }, /"absoluteTimeout"/],
  ['saveUninitialized not boolean', { ...valid, saveUninitialized: 'yes' }, /"saveUninitialized"/],
  ['rolling not boolean', { ...valid, rolling: 1 }, /"rolling"/],
  ['unknown conflict policy', { ...valid, conflict: 'ignore' }, /"conflict"/],
  ['encryptAtRest not boolean', { ...valid, encryptAtRest: 'on' }, /"encryptAtRest"/],
  ['unknown offload', { ...valid, crypto: { offload: 'sometimes' } }, /"crypto.offload"/],
  ['zero threads', { ...valid, crypto: { threads: 0 } }, /"crypto.threads"/],
  ['fractional threads', { ...valid, crypto: { threads: 1.5 } }, /"crypto.threads"/]
]

for (const [title, options, message] of bad) {
  t.test(`rejects ${title}`, async (t) => {
    t.throws(() => resolveOptions(options), { code: 'FST_SESS_INVALID_OPTION', message })
  })
}

t.test('storeTimeout is seconds, two by default', async (t) => {
  const defaults = resolveOptions(valid)
  const given = resolveOptions({ ...valid, storeTimeout: 0.25 })
  t.teardown(async () => { await defaults.store.close?.(); await given.store.close?.() })
  t.equal(defaults.storeTimeoutMs, 2000)
  t.equal(given.storeTimeoutMs, 250)
})

t.test('the longest cookie lifetime browsers keep is accepted, at registration and per response', async (t) => {
  const o = resolveOptions({ ...valid, cookie: { maxAge: 34_560_000 } })
  t.teardown(() => o.store.close?.())
  t.equal(o.cookie.maxAge, 34_560_000)
  const app = await build({}, (app) => {
    app.get('/remember', async (req) => { req.session.options({ maxAge: 86_400_000 }); return 'no' })
  })
  t.teardown(() => app.close())
  const res = await app.inject('/remember')
  t.same([res.statusCode, res.json().code], [500, 'FST_SESS_INVALID_OPTION'])
  t.match(res.json().message, /"session.options\(\).maxAge": must be at most 34560000 seconds; durations are in seconds, not milliseconds/)
})

t.test('store options are checked with the same rules, unknown names included', async (t) => {
  const cases: Array<[() => unknown, RegExp]> = [
    [() => new MemoryStore({ maxEntries: 5 } as never), /"MemoryStore maxEntries": is not a known option/],
    [() => new MemoryStore({ max: 0 }), /"MemoryStore max": must be an integer from 1/],
    [() => new MemoryStore({ sweepInterval: -1 }), /"MemoryStore sweepInterval": must be a positive number of seconds/],
    [() => new MemoryStore(null as never), /"MemoryStore options": must be an object/],
    [() => new CookieStore({ maxCookieByte: 1024 } as never), /"CookieStore maxCookieByte".*did you mean "maxCookieBytes"/]
  ]
  for (const [make, message] of cases) t.throws(make, { code: 'FST_SESS_INVALID_OPTION', message })
})

t.test("Fastify's own register() options reach the plugin and are accepted", async (t) => {
  const app = Fastify()
  app.register(fastifySessions, { secret: SECRET, prefix: '/api', logLevel: 'warn' } as never)
  await t.resolves(async () => { await app.ready() })
  await app.close()
})

t.test('a bad option fails registration with the option name', async (t) => {
  const app = Fastify()
  app.register(fastifySessions, { secret: 'too short' })
  await t.rejects(async () => { await app.ready() }, { code: 'FST_SESS_INVALID_OPTION', message: /"secret"/ })
})

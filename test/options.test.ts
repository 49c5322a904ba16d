import t from 'tap'
import Fastify from 'fastify'
import fastifySessions, { MemoryStore } from '../src/index'
import { resolveOptions, DEFAULT_IDLE_TIMEOUT, DEFAULT_ABSOLUTE_TIMEOUT } from '../src/options'
import { SECRET } from './helpers/app'

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
  ['stateless store without a size limit', { ...valid, store: { stateless: true, encode () {}, decode () {} } }, /"store".*maxCookieBytes/],
  ['stateless store with a bad size limit', { ...valid, store: { stateless: true, maxCookieBytes: 0, encode () {}, decode () {} } }, /"store".*maxCookieBytes/],
  ['bad cookie name', { ...valid, cookieName: 'a b' }, /"cookieName"/],
  ['empty cookie name', { ...valid, cookieName: '' }, /"cookieName"/],
  ['cookie not an object', { ...valid, cookie: [] }, /"cookie"/],
  ['unknown cookie option', { ...valid, cookie: { expires: new Date() } }, /"cookie.expires"/],
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

t.test('a bad option fails registration with the option name', async (t) => {
  const app = Fastify()
  app.register(fastifySessions, { secret: 'too short' })
  await t.rejects(async () => { await app.ready() }, { code: 'FST_SESS_INVALID_OPTION', message: /"secret"/ })
})

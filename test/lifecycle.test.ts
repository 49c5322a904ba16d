import t from 'tap'
import { build, sessionCookie, setCookieLine } from './helpers/app'
import { StoreSpy } from './helpers/store-spy'
import { basicRoutes } from './helpers/routes'

async function setup (t: tap.Test, options = {}) {
  const store = new StoreSpy()
  t.teardown(() => store.close())
  const app = await build({ store, ...options }, (app) => {
    basicRoutes(app)
    app.get('/peek-cart', async (req) => req.session.get('cart') ?? null)
  })
  t.teardown(() => app.close())
  return { app, store }
}

t.test('a request without a session cookie does no store I/O and sends no cookie', async (t) => {
  const { app, store } = await setup(t)
  for (const url of ['/anon', '/read']) {
    const res = await app.inject(url)
    t.equal(res.statusCode, 200)
    t.equal(res.headers['set-cookie'], undefined, `${url}: no cookie`)
  }
  t.equal(store.total, 0)
})

t.test('the first write stores a record and sends a secure-by-default cookie', async (t) => {
  const { app, store } = await setup(t)
  const res = await app.inject('/write')
  t.same(res.json(), { n: 1 })
  const line = setCookieLine(res) as string
  t.match(line, /^sid=[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}; /)
  t.match(line, /; Path=\//)
  t.match(line, /; HttpOnly/)
  t.match(line, /; SameSite=Lax/)
  t.notMatch(line, /Secure/, 'plain http: no Secure')
  t.notMatch(line, /Max-Age|Expires/, 'browser-session cookie by default')
  t.equal(res.headers['cache-control'], 'no-store')
  t.same(store.calls, { get: 0, set: 1, destroy: 0, touch: 0 })
})

t.test('the store sees a digest of the id, never the id', async (t) => {
  const { app, store } = await setup(t)
  const cookie = sessionCookie(await app.inject('/write')) as string
  const id = cookie.slice(4, 47)
  t.equal(store.keys.length, 1)
  t.not(store.keys[0], id)
  t.notOk(store.keys[0].includes(id))
  t.equal(store.keys[0].length, 43)
})

t.test('ids are 256 random bits and unique', async (t) => {
  const { app } = await setup(t)
  const ids = new Set<string>()
  for (let i = 0; i < 200; i++) {
    const cookie = sessionCookie(await app.inject('/write')) as string
    const id = cookie.slice(4, 47)
    t.equal(Buffer.from(id, 'base64url').length, 32)
    ids.add(id)
  }
  t.equal(ids.size, 200)
})

t.test('a read-only request reads once and writes nothing', async (t) => {
  const { app, store } = await setup(t)
  const cookie = sessionCookie(await app.inject('/write'))
  store.reset()
  const res = await app.inject({ url: '/read', headers: { cookie } })
  t.same(res.json(), { n: 1, isNew: false })
  t.equal(res.headers['set-cookie'], undefined)
  t.equal(res.headers['cache-control'], undefined, 'no cookie, no cache-control')
  t.same(store.calls, { get: 1, set: 0, destroy: 0, touch: 0 })
})

t.test('writes accumulate across requests', async (t) => {
  const { app } = await setup(t)
  const cookie = sessionCookie(await app.inject('/write'))
  for (let i = 2; i <= 5; i++) {
    const res = await app.inject({ url: '/write', headers: { cookie } })
    t.same(res.json(), { n: i })
    t.equal(res.headers['set-cookie'], undefined, 'existing cookie is not re-sent')
  }
})

t.test('in-place mutation of a value read with get() is saved', async (t) => {
  const { app, store } = await setup(t)
  const cookie = sessionCookie(await app.inject('/cart'))
  t.same((await app.inject({ url: '/cart', headers: { cookie } })).json(), ['a', 'b'])
  t.same((await app.inject({ url: '/cart', headers: { cookie } })).json(), ['a', 'b', 'c'])
  store.reset()
  t.same((await app.inject({ url: '/peek-cart', headers: { cookie } })).json(), ['a', 'b', 'c'])
  t.equal(store.calls.set, 0, 'reading an object without changing it writes nothing')
})

t.test('saveUninitialized: true stores an untouched new session', async (t) => {
  const { app, store } = await setup(t, { saveUninitialized: true })
  const res = await app.inject('/read')
  t.ok(sessionCookie(res))
  t.equal(store.calls.set, 1)
  const again = await app.inject({ url: '/read', headers: { cookie: sessionCookie(res) } })
  t.same(again.json(), { n: null, isNew: false })
})

t.test('a route can set its own Cache-Control', async (t) => {
  const store = new StoreSpy()
  t.teardown(() => store.close())
  const app = await build({ store }, (app) => {
    app.get('/', async (req, reply) => {
      reply.header('cache-control', 'private, max-age=5')
      req.session.set('a', 1)
      return 'ok'
    })
  })
  t.teardown(() => app.close())
  const res = await app.inject('/')
  t.ok(sessionCookie(res))
  t.equal(res.headers['cache-control'], 'private, max-age=5')
})

t.test('touch is throttled and never rewrites data', async (t) => {
  t.capture(Date, 'now', () => now)
  let now = 1_700_000_000_000
  const { app, store } = await setup(t, { idleTimeout: 100 })
  const cookie = sessionCookie(await app.inject('/write'))
  store.reset()
  now += 5_000
  await app.inject({ url: '/read', headers: { cookie } })
  t.equal(store.calls.touch, 0, 'within 10% of the idle window: no touch')
  now += 6_000
  await app.inject({ url: '/read', headers: { cookie } })
  t.equal(store.calls.touch, 1, 'past 10% of the idle window: one touch')
  t.equal(store.calls.set, 0, 'no data rewrite')
  now += 95_000
  const res = await app.inject({ url: '/read', headers: { cookie } })
  t.same(res.json(), { n: 1, isNew: false }, 'touch extended the idle deadline')
})

t.test('an explicit touch() extends at once', async (t) => {
  let now = 1_700_000_000_000
  t.capture(Date, 'now', () => now)
  const { app, store } = await setup(t, { idleTimeout: 100 })
  const cookie = sessionCookie(await app.inject('/write'))
  store.reset()
  now += 1_000
  await app.inject({ url: '/touch', headers: { cookie } })
  t.equal(store.calls.touch, 1)
  t.equal(store.calls.set, 0)
})

t.test('idle timeout: a replayed cookie past the deadline gets a fresh session', async (t) => {
  let now = 1_700_000_000_000
  t.capture(Date, 'now', () => now)
  const { app } = await setup(t, { idleTimeout: 60 })
  const cookie = sessionCookie(await app.inject('/write'))
  now += 59_000
  t.same((await app.inject({ url: '/read', headers: { cookie } })).json(), { n: 1, isNew: false })
  now += 61_000
  const res = await app.inject({ url: '/write', headers: { cookie } })
  t.same(res.json(), { n: 1 }, 'fresh data')
  t.not(sessionCookie(res), cookie, 'a new id')
})

t.test('absolute timeout: activity does not keep a session alive past it', async (t) => {
  let now = 1_700_000_000_000
  t.capture(Date, 'now', () => now)
  const { app } = await setup(t, { idleTimeout: 60, absoluteTimeout: 150 })
  const cookie = sessionCookie(await app.inject('/write'))
  for (let i = 0; i < 4; i++) {
    now += 40_000
    const res = await app.inject({ url: '/write', headers: { cookie } })
    if (i < 3) t.same(res.json(), { n: i + 2 }, `active at ${(i + 1) * 40}s`)
    else t.same(res.json(), { n: 1 }, 'past 150 s: fresh session')
  }
})

t.test('absolute timeout is checked from the record even if the store keeps it', async (t) => {
  let now = 1_700_000_000_000
  t.capture(Date, 'now', () => now)
  const store = new StoreSpy()
  t.teardown(() => store.close())
  const first = await build({ store, absoluteTimeout: 1000 }, (app) => { app.get('/w', async (req) => { req.session.set('a', 1); return 'ok' }) })
  const cookie = sessionCookie(await first.inject('/w'))
  await first.close()
  // The same store under a stricter configuration: the record outlives the new limit.
  const second = await build({ store, absoluteTimeout: 10 }, (app) => { app.get('/r', async (req) => req.session.get('a') ?? 'none') })
  t.teardown(() => second.close())
  now += 11_000
  t.equal((await second.inject({ url: '/r', headers: { cookie } })).body, 'none')
})

t.test('a cookie whose record is gone is answered from memory for a minute, then looked up again', async (t) => {
  let now = 1_700_000_000_000
  t.capture(Date, 'now', () => now)
  const { app, store } = await setup(t)
  const cookie = sessionCookie(await app.inject('/write'))
  // Gone elsewhere: destroyed by another server, or expired.
  await store.inner.destroy(store.keys[0])
  store.reset()
  for (let i = 0; i < 3; i++) t.same((await app.inject({ url: '/read', headers: { cookie } })).json(), { n: null, isNew: true })
  t.equal(store.calls.get, 1, 'one lookup: later requests with the cookie are answered from memory')
  now += 60_000
  t.same((await app.inject({ url: '/read', headers: { cookie } })).json(), { n: null, isNew: true })
  t.equal(store.calls.get, 2, 'a minute later the store is asked again')
})

t.test('idle deadline in the record is enforced even when the store returns it', async (t) => {
  const record = { data: { a: 1 }, version: 1, createdAt: Date.now() - 1000, expiresAt: Date.now() - 1 }
  const store = new StoreSpy({ faults: { get: { resolve: record } } })
  t.teardown(() => store.close())
  const app = await build({ store }, (app) => { app.get('/r', async (req) => req.session.get('a') ?? 'none') })
  t.teardown(() => app.close())
  const seed = await build({}, (app) => { app.get('/w', async (req) => { req.session.set('x', 1); return 'ok' }) })
  const cookie = sessionCookie(await seed.inject('/w'))
  await seed.close()
  t.equal((await app.inject({ url: '/r', headers: { cookie } })).body, 'none')
})

t.test('rolling re-sends the cookie on every response', async (t) => {
  const { app } = await setup(t, { rolling: true })
  const cookie = sessionCookie(await app.inject('/write'))
  const res = await app.inject({ url: '/read', headers: { cookie } })
  t.equal(sessionCookie(res), cookie)
  t.equal(res.headers['cache-control'], 'no-store')
})

t.test('cookie.maxAge makes a persistent cookie refreshed when the session is written', async (t) => {
  const { app } = await setup(t, { cookie: { maxAge: 3600 } })
  const first = await app.inject('/write')
  t.match(setCookieLine(first), /Max-Age=3600/)
  const cookie = sessionCookie(first)
  t.match(setCookieLine(await app.inject({ url: '/write', headers: { cookie } })), /Max-Age=3600/)
  t.equal((await app.inject({ url: '/read', headers: { cookie } })).headers['set-cookie'], undefined)
})

t.test('secure: auto sets Secure over https (trustProxy)', async (t) => {
  const store = new StoreSpy()
  t.teardown(() => store.close())
  const app = await build({ store }, (app) => { app.get('/w', async (req) => { req.session.set('a', 1); return 'ok' }) }, { trustProxy: true })
  t.teardown(() => app.close())
  const res = await app.inject({ url: '/w', headers: { 'x-forwarded-proto': 'https' } })
  t.match(setCookieLine(res), /; Secure/)
  t.notMatch(setCookieLine(await app.inject('/w')), /; Secure/)
})

t.test('cookie options: name, domain, strict, secure, partitioned', async (t) => {
  const store = new StoreSpy()
  t.teardown(() => store.close())
  const app = await build({ store, cookieName: '__Secure-s', cookie: { domain: 'example.com', sameSite: 'none', secure: true, partitioned: true, httpOnly: false } },
    (app) => { app.get('/w', async (req) => { req.session.set('a', 1); return 'ok' }) })
  t.teardown(() => app.close())
  const line = setCookieLine(await app.inject('/w'), '__Secure-s') as string
  t.match(line, /Domain=example\.com/)
  t.match(line, /SameSite=None/)
  t.match(line, /; Secure/)
  t.match(line, /Partitioned/)
  t.notMatch(line, /HttpOnly/)
})

t.test('route opt-out: no session work at all', async (t) => {
  const store = new StoreSpy()
  t.teardown(() => store.close())
  const app = await build({ store }, (app) => {
    app.get('/w', async (req) => { req.session.set('a', 1); return 'ok' })
    app.get('/off', { config: { session: false } }, async (req) => ({ session: req.session === undefined ? 'none' : 'some' }))
  })
  t.teardown(() => app.close())
  const cookie = sessionCookie(await app.inject('/w'))
  store.reset()
  const res = await app.inject({ url: '/off', headers: { cookie } })
  t.same(res.json(), { session: 'none' })
  t.equal(res.headers['set-cookie'], undefined)
  const anonymous = await app.inject('/off')
  t.same(anonymous.json(), { session: 'none' }, 'without a cookie too')
  t.equal(store.total, 0)
})

import t from 'tap'
import Fastify from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySessions, { MemoryStore, type SessionStore } from '../src/index'
import { build, SECRET, sessionCookie } from './helpers/app'

t.test('registers @fastify/cookie only when it is missing', async (t) => {
  const app = Fastify()
  await app.register(fastifyCookie)
  await app.register(fastifySessions, { secret: SECRET })
  app.get('/w', async (req, reply) => { req.session.set('a', 1); reply.setCookie('other', 'x'); return 'ok' })
  t.teardown(() => app.close())
  const res = await app.inject('/w')
  t.equal(res.statusCode, 200)
  t.ok(sessionCookie(res))
  t.ok(sessionCookie(res, 'other'))
})

t.test('plugin metadata', async (t) => {
  const meta = (fastifySessions as unknown as Record<symbol, unknown>)[Symbol.for('plugin-meta')] as { name: string, fastify: string }
  t.equal(meta.name, 'fastify-sessions')
  t.equal(meta.fastify, '5.x')
})

t.test('the default store is closed with the app; a given store is left alone', async (t) => {
  const own = await build({}, (app) => { app.get('/w', async (req) => { req.session.set('a', 1); return 'ok' }) })
  await own.inject('/w')
  await t.resolves(own.close())
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const app = await build({ store }, (app) => { app.get('/w', async (req) => { req.session.set('a', 1); return 'ok' }) })
  await app.inject('/w')
  await app.close()
  t.equal(store.size, 1, 'a store the app did not create keeps its records')
})

function failingStore (failOn: keyof SessionStore): SessionStore {
  const inner = new MemoryStore()
  const broken = async () => { throw new Error('connection refused') }
  return Object.assign(Object.create(null), {
    get: failOn === 'get' ? broken : inner.get.bind(inner),
    set: failOn === 'set' ? broken : inner.set.bind(inner),
    destroy: failOn === 'destroy' ? broken : inner.destroy.bind(inner),
    touch: failOn === 'touch' ? broken : inner.touch.bind(inner),
    close: inner.close.bind(inner)
  })
}

t.test('a failing store gives 503 FST_SESS_STORE_UNAVAILABLE; anonymous requests are unaffected', async (t) => {
  for (const failOn of ['get', 'set', 'destroy'] as const) {
    const store = failingStore(failOn)
    t.teardown(() => store.close?.())
    const seedStore = failOn === 'get' ? undefined : store
    const app = await build({ store: seedStore ?? store }, (app) => {
      app.get('/anon', async () => 'fine')
      app.get('/w', async (req) => { req.session.set('a', 1); return 'ok' })
      app.post('/logout', async (req) => { await req.session.destroy(); return 'ok' })
    })
    t.teardown(() => app.close())
    t.equal((await app.inject('/anon')).statusCode, 200, `${failOn}: anonymous request`)
    if (failOn === 'set') {
      const res = await app.inject('/w')
      t.equal(res.statusCode, 503, 'set fails')
      t.equal(res.json().code, 'FST_SESS_STORE_UNAVAILABLE')
      t.notMatch(res.json().message, /connection refused/, "the store's own error text stays out of the reply")
      continue
    }
    const seeder = failOn === 'get' ? await build({}, (a) => { a.get('/w', async (req) => { req.session.set('a', 1); return 'ok' }) }) : app
    if (seeder !== app) t.teardown(() => seeder.close())
    const cookie = sessionCookie(await seeder.inject('/w'))
    const res = failOn === 'get'
      ? await app.inject({ url: '/w', headers: { cookie } })
      : await app.inject({ method: 'POST', url: '/logout', headers: { cookie } })
    t.equal(res.statusCode, 503, `${failOn} fails`)
    t.equal(res.json().code, 'FST_SESS_STORE_UNAVAILABLE')
  }
})

t.test('a failing touch is logged and does not fail the request', async (t) => {
  let now = 1_700_000_000_000
  t.capture(Date, 'now', () => now)
  const store = failingStore('touch')
  t.teardown(() => store.close?.())
  const app = await build({ store, idleTimeout: 100 }, (app) => {
    app.get('/w', async (req) => { req.session.set('a', 1); return 'ok' })
    app.get('/r', async (req) => req.session.get('a'))
  })
  t.teardown(() => app.close())
  const cookie = sessionCookie(await app.inject('/w'))
  now += 50_000
  const res = await app.inject({ url: '/r', headers: { cookie } })
  t.equal(res.statusCode, 200)
  t.equal(res.body, '1')
})

t.test('stores without touch() still work: the deadline moves on writes only', async (t) => {
  const inner = new MemoryStore()
  t.teardown(() => inner.close())
  const store: SessionStore = { get: (k) => inner.get(k), set: (k, r, v) => inner.set(k, r, v), destroy: (k) => inner.destroy(k) }
  const app = await build({ store, idleTimeout: 100 }, (app) => {
    app.get('/w', async (req) => { req.session.set('a', 1); return 'ok' })
    app.get('/t', async (req) => { req.session.touch(); return req.session.get('a') })
  })
  t.teardown(() => app.close())
  const cookie = sessionCookie(await app.inject('/w'))
  t.equal((await app.inject({ url: '/t', headers: { cookie } })).body, '1')
})

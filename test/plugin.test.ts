import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySessions, { MemoryStore, type FastifySessionsOptions } from '../src/index'
import { build, SECRET, sessionCookie } from './helpers/app'
import { StoreSpy } from './helpers/store-spy'

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

function routes (app: FastifyInstance): void {
  app.get('/anon', async () => 'fine')
  app.get('/w', async (req) => { req.session.set('a', 1); return 'ok' })
  app.get('/r', async (req) => req.session.get('a'))
  app.get('/t', async (req) => { req.session.touch(); return req.session.get('a') })
  app.post('/logout', async (req) => { await req.session.destroy(); return 'ok' })
}

async function setup (t: tap.Test, store: StoreSpy, options: Partial<FastifySessionsOptions> = {}): Promise<FastifyInstance> {
  t.teardown(() => store.close())
  const app = await build({ store, ...options }, routes)
  t.teardown(() => app.close())
  return app
}

t.test('a failing store gives 503 FST_SESS_STORE_UNAVAILABLE; anonymous requests are unaffected', async (t) => {
  for (const failOn of ['get', 'set', 'destroy'] as const) {
    const store = new StoreSpy()
    const app = await setup(t, store)
    const cookie = sessionCookie(await app.inject('/w'))
    store.fail(failOn)
    t.equal((await app.inject('/anon')).statusCode, 200, `${failOn}: anonymous request`)
    const res = failOn === 'get'
      ? await app.inject({ url: '/w', headers: { cookie } })
      : failOn === 'set'
        ? await app.inject('/w')
        : await app.inject({ method: 'POST', url: '/logout', headers: { cookie } })
    t.equal(res.statusCode, 503, `${failOn} fails`)
    t.equal(res.json().code, 'FST_SESS_STORE_UNAVAILABLE')
    t.notMatch(res.json().message, /connection refused/, "the store's own error text stays out of the reply")
  }
})

t.test('a failing touch is logged and does not fail the request', async (t) => {
  let now = 1_700_000_000_000
  t.capture(Date, 'now', () => now)
  const store = new StoreSpy({ faults: { touch: 'reject' } })
  const app = await setup(t, store, { idleTimeout: 100 })
  const cookie = sessionCookie(await app.inject('/w'))
  now += 50_000
  const res = await app.inject({ url: '/r', headers: { cookie } })
  t.equal(res.statusCode, 200)
  t.equal(res.body, '1')
  t.equal(store.calls.touch, 1, 'the touch was tried')
})

t.test('stores without touch() still work: the deadline moves on writes only', async (t) => {
  const store = new StoreSpy({ touch: false })
  const app = await setup(t, store, { idleTimeout: 100 })
  const cookie = sessionCookie(await app.inject('/w'))
  t.equal((await app.inject({ url: '/t', headers: { cookie } })).body, '1')
})

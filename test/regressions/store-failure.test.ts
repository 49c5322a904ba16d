import t from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { sessionCookie } from '../helpers/app'
import { assertUnavailable, dump, faultyApp, seed } from '../helpers/faulty-app'
import type { StoreMethod } from '../helpers/store-spy'
import { failOnHang } from '../helpers/hang'

// Short, so that a call that never settles fails its request quickly.
const BOUNDED = { storeTimeout: 0.2 }

function put (app: FastifyInstance, cookie: string, key: string, value: string): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'POST', url: '/put', query: { key, value }, headers: { cookie } })
}

t.test('a store call that never settles fails its request with 503, and the next write of the session works once the store answers', async (t) => {
  const hanging: Array<[StoreMethod, string, (app: FastifyInstance, cookie: string) => Promise<LightMyRequestResponse>]> = [
    ['get', 'loading for a route that reads the session', (app, cookie) => app.inject({ url: '/dump', headers: { cookie } })],
    ['set', 'committing a change', (app, cookie) => put(app, cookie, 'lost', 'value')],
    ['destroy', 'logging out', (app, cookie) => app.inject({ method: 'POST', url: '/logout', headers: { cookie } })]
  ]
  for (const [method, when, request] of hanging) {
    t.test(`${method}, ${when}`, async (t) => {
      failOnHang(t)
      const { app, store } = await faultyApp(t, BOUNDED)
      const cookie = await seed(app)
      store.next(method, 'hang')
      assertUnavailable(t, await request(app, cookie), `${method} never settles`)
      t.equal(store.hung, 1, 'the store call was made and left pending')
      const res = await put(app, cookie, 'after', 'yes')
      t.equal(res.statusCode, 200, 'the next write of the same session answers 200')
      t.same((await dump(app, cookie)).data, { user: 'ada', after: 'yes' }, 'and its data reads back')
    })
  }
})

t.test('while the store is down, a route that never touches the session answers; one that reads it gets 503', async (t) => {
  failOnHang(t)
  const { app, store } = await faultyApp(t)
  const cookie = await seed(app)
  store.fail('get', 'reject')
  const anon = await app.inject({ url: '/anon', headers: { cookie } })
  t.equal(anon.statusCode, 200, 'a route that never touches the session answers')
  t.equal(anon.body, 'hello')
  assertUnavailable(t, await app.inject({ url: '/dump', headers: { cookie } }), 'a route that reads the session')
})

t.test('a failed commit is tried once: the error reply does not write again', async (t) => {
  failOnHang(t)
  const { app, store } = await faultyApp(t)
  const cookie = await seed(app)
  store.reset()
  store.fail('set', 'reject')
  assertUnavailable(t, await put(app, cookie, 'n', '1'), 'set rejects')
  t.equal(store.calls.set, 1, 'one write')
})

t.test('a save() or update() that failed in the route is not tried again by the error reply', async (t) => {
  failOnHang(t)
  const { app, store } = await faultyApp(t, {}, (app) => {
    app.post('/save', async (req) => {
      req.session.set('n', 1)
      await req.session.save()
      return 'saved'
    })
    app.post('/update', async (req) => {
      await req.session.update((s) => { s.set('n', 2) })
      return 'updated'
    })
  })
  const cookie = await seed(app)
  for (const url of ['/save', '/update']) {
    store.reset()
    store.fail('set', 'reject')
    assertUnavailable(t, await app.inject({ method: 'POST', url, headers: { cookie } }), `${url}: set rejects`)
    t.equal(store.calls.set, 1, `${url}: one write`)
    store.heal()
    t.same((await dump(app, cookie)).data, { user: 'ada' }, `${url}: nothing of it was stored`)
  }
})

t.test('commits queued behind a write that never settles give up within storeTimeout without calling the store', async (t) => {
  failOnHang(t)
  const { app, store } = await faultyApp(t, BOUNDED)
  const cookie = await seed(app)
  store.reset()
  store.fail('set', 'hang')
  const responses = await Promise.all(Array.from({ length: 5 }, (_, i) => put(app, cookie, 'n', String(i))))
  responses.forEach((res, i) => assertUnavailable(t, res, `write ${i}`))
  t.equal(store.calls.set, 1, 'the store saw one write')
})

t.test('a login whose new record cannot be written fails with 503 and leaves the old session as it was', async (t) => {
  failOnHang(t)
  const { app, store } = await faultyApp(t, {}, (app) => {
    app.post('/login', async (req) => {
      await req.session.regenerate()
      req.session.set('user', 'ada')
      return 'welcome'
    })
  })
  const cookie = await seed(app, 'cart', 'apple')
  store.fail('set', 'reject')
  const res = await app.inject({ method: 'POST', url: '/login', headers: { cookie } })
  assertUnavailable(t, res, 'login')
  t.equal(sessionCookie(res), undefined, 'the browser keeps its cookie')
  store.heal()
  const after = await dump(app, cookie)
  t.same([after.isNew, after.data], [false, { cart: 'apple' }], 'the old cookie still works, its data intact')
})

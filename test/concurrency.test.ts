import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { MemoryStore, type SessionRecord } from '../src/index'
import { build, sessionCookie } from './helpers/app'
import { Barrier, Races } from './helpers/gate'
import { StoreSpy } from './helpers/store-spy'

// Races between two requests are ordered by `races`; bursts of many requests meet at `burst`.
const races = new Races()
const burst = new Barrier()

function routes (app: FastifyInstance): void {
  app.get('/seed', async (req) => { req.session.set('a', 1); req.session.set('counter', 0); return 'ok' })
  app.get('/dump', async (req) => req.session.data())
  app.get('/session', async (req) => ({ data: req.session.data(), isNew: req.session.isNew }))
  app.post('/set/:key', async (req) => {
    await burst.wait()
    req.session.set((req.params as { key: string }).key, true)
    return 'ok'
  })
  app.post('/delete/:key', async (req) => {
    req.session.delete((req.params as { key: string }).key)
    return 'ok'
  })
  app.post('/clear', async (req) => { req.session.clear(); return 'ok' })
  app.post('/held-delete/:key', async (req) => {
    req.session.delete((req.params as { key: string }).key)
    await races.wait()
    return 'ok'
  })
  app.post('/held-clear', async (req) => { req.session.clear(); await races.wait(); return 'ok' })
  app.post('/held-set/:key', async (req) => {
    req.session.set((req.params as { key: string }).key, true)
    await races.wait()
    return 'ok'
  })
  app.post('/increment', async (req) => {
    await burst.wait()
    await req.session.update((s) => { s.set('counter', (s.get('counter') as number) + 1) })
    return 'ok'
  })
  app.post('/push', async (req) => {
    await burst.wait()
    await req.session.update((s) => {
      const list = s.get('list') as number[] | undefined
      if (list === undefined) s.set('list', [1])
      else list.push(list.length + 1)
    })
    return 'ok'
  })
  app.post('/logout', async (req) => { await req.session.destroy(); return 'ok' })
  app.post('/login', async (req) => { await req.session.regenerate(); req.session.set('user', 'bob'); return 'ok' })
}

async function setup (t: tap.Test, options = {}) {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const app = await build({ store, ...options }, routes)
  t.teardown(() => app.close())
  const cookie = sessionCookie(await app.inject('/seed')) as string
  return { app, store, cookie }
}

/** A seeded session on a store that counts its calls. */
async function spied (t: tap.Test) {
  const store = new StoreSpy()
  t.teardown(() => store.close())
  const app = await build({ store }, routes)
  t.teardown(() => app.close())
  const cookie = sessionCookie(await app.inject('/seed')) as string
  return { app, store, cookie }
}

const post = (app: FastifyInstance, url: string, cookie: string) => app.inject({ method: 'POST', url, headers: { cookie } })
const dump = async (app: FastifyInstance, cookie: string) => (await app.inject({ url: '/dump', headers: { cookie } })).json()
const session = async (app: FastifyInstance, cookie?: string) => (await app.inject({ url: '/session', headers: cookie === undefined ? {} : { cookie } })).json()

/** `count` requests at once, all loaded before any of them commits. */
function together<T> (count: number, request: (i: number) => Promise<T>): Promise<T[]> {
  burst.expect(count)
  return Promise.all(Array.from({ length: count }, (_, i) => request(i)))
}

t.test('200 concurrent requests each setting its own key: all 200 keys survive', async (t) => {
  const { app, cookie } = await setup(t)
  const results = await together(200, (i) => post(app, `/set/k${i}`, cookie))
  t.same(results.map((r) => r.statusCode).filter((s) => s !== 200), [])
  const data = await dump(app, cookie)
  t.equal(Object.keys(data).filter((k) => k.startsWith('k')).length, 200)
  t.equal(data.a, 1, 'an untouched key keeps its value')
})

t.test('200 concurrent update() increments: the counter is exactly 200', async (t) => {
  const { app, cookie } = await setup(t)
  const results = await together(200, () => post(app, '/increment', cookie))
  t.same(results.map((r) => r.statusCode).filter((s) => s !== 200), [])
  t.equal((await dump(app, cookie)).counter, 200)
})

t.test('update() across two processes sharing a store: compare-and-set retries lose nothing', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  // Two plugin instances share no in-process queue, like two servers behind a load balancer.
  const one = await build({ store }, routes)
  const two = await build({ store }, routes)
  t.teardown(() => one.close())
  t.teardown(() => two.close())
  const cookie = sessionCookie(await one.inject('/seed')) as string
  const results = await together(60, (i) => post(i % 2 === 0 ? one : two, '/increment', cookie))
  t.same(results.map((r) => r.statusCode).filter((s) => s !== 200), [])
  t.equal((await dump(one, cookie)).counter, 60)
  const keys = await together(60, (i) => post(i % 2 === 0 ? one : two, `/set/p${i}`, cookie))
  t.same(keys.map((r) => r.statusCode).filter((s) => s !== 200), [])
  t.equal(Object.keys(await dump(two, cookie)).filter((k) => k.startsWith('p')).length, 60)
})

t.test('update() with in-place changes appends without losing items', async (t) => {
  const { app, cookie } = await setup(t)
  await together(50, () => post(app, '/push', cookie))
  t.same((await dump(app, cookie)).list, Array.from({ length: 50 }, (_, i) => i + 1))
})

t.test('update() on a new session creates it and sends the cookie', async (t) => {
  const { app } = await setup(t)
  const res = await app.inject({ method: 'POST', url: '/push' })
  const cookie = sessionCookie(res) as string
  t.ok(cookie)
  t.same((await dump(app, cookie)).list, [1])
})

t.test('an uncontended update() reads the store once (at load) and writes once', async (t) => {
  const { app, store, cookie } = await spied(t)
  store.reset()
  await post(app, '/increment', cookie)
  t.same(store.calls, { get: 1, set: 1, destroy: 0, touch: 0 })
  t.equal((await dump(app, cookie)).counter, 1)
})

t.test('two commits of one session in one process: the later one sends no compare-and-set bound to fail', async (t) => {
  const { app, store, cookie } = await spied(t)
  for (const [url, writes] of [['/increment', ['/increment', '/increment']], ['/set', ['/set/x', '/set/y']]] as const) {
    store.reset()
    const results = await together(2, (i) => post(app, writes[i], cookie))
    t.same(results.map((r) => r.statusCode), [200, 200], url)
    // Two loads, then the first commit while the second waits: the second is handed the
    // record the first wrote, so it neither loses a compare-and-set nor reads.
    t.same(store.calls, { get: 2, set: 2, destroy: 0, touch: 0 }, `${url} queued: one write each, no read`)
  }
  store.reset()
  // The first commit ends before the second starts: the second's copy is known to be
  // outdated, so it reads the newer one and writes once.
  await races.run(() => post(app, '/held-set/late', cookie), () => post(app, '/set/early', cookie))
  t.same(store.calls, { get: 3, set: 2, destroy: 0, touch: 0 }, 'one after the other: one read more, no write lost')
  const data = await dump(app, cookie)
  t.equal(data.counter, 2)
  t.same([data.x, data.y, data.early, data.late], [true, true, true, true])
})

t.test('a store that went back to an older version (a failover, a restored backup) takes writes again at once', async (t) => {
  const { app, store, cookie } = await spied(t)
  t.equal((await post(app, '/increment', cookie)).statusCode, 200)
  const key = store.keys[0]
  const before = await store.inner.get(key) as SessionRecord
  for (let i = 0; i < 3; i++) t.equal((await post(app, '/increment', cookie)).statusCode, 200)
  // The last three writes are lost: the store holds the record from before them.
  await store.inner.destroy(key)
  t.equal(await store.inner.set(key, before, 0), true)
  for (const url of ['/increment', '/set/after', '/increment']) t.equal((await post(app, url, cookie)).statusCode, 200, url)
  const data = await dump(app, cookie)
  t.equal(data.counter, 3, 'counted on from the record the store holds')
  t.equal(data.after, true)
})

t.test('update() that changes nothing writes nothing', async (t) => {
  const store = new StoreSpy()
  t.teardown(() => store.close())
  const app = await build({ store }, (app) => {
    routes(app)
    app.post('/noop', async (req) => { await req.session.update(() => {}); return 'ok' })
  })
  t.teardown(() => app.close())
  const cookie = sessionCookie(await app.inject('/seed')) as string
  store.reset()
  await post(app, '/noop', cookie)
  t.equal(store.calls.set, 0)
})

t.test('a delete of a racing a set of b: a gone, b present, whichever commits last', async (t) => {
  for (const [held, other] of [['/held-delete/a', '/set/b'], ['/held-set/b', '/delete/a']]) {
    const { app, cookie } = await setup(t)
    await races.run(() => post(app, held, cookie), () => post(app, other, cookie))
    const data = await dump(app, cookie)
    t.equal(data.a, undefined, `${held} committed last: a gone`)
    t.equal(data.b, true, `${held} committed last: b present`)
  }
})

t.test('clear() racing a set: the later commit decides', async (t) => {
  const { app, cookie } = await setup(t)
  // The clear commits first; the set, loaded before it but committed later, replays onto it.
  await races.run(() => post(app, '/held-set/late', cookie), () => post(app, '/clear', cookie))
  t.same(await dump(app, cookie), { late: true })
  const second = await setup(t)
  // The set commits first; the clear, loaded before it but committed later, removes it.
  await races.run(() => post(second.app, '/held-clear', second.cookie), () => post(second.app, '/set/x', second.cookie))
  t.same(await dump(second.app, second.cookie), {})
})

t.test("conflict: 'error' answers 409 with the code; the winner's data stays", async (t) => {
  const { app, cookie } = await setup(t, { conflict: 'error' })
  const results = await races.run(() => post(app, '/held-set/slow', cookie), () => post(app, '/set/fast', cookie))
  t.equal(results[1].statusCode, 200)
  t.equal(results[0].statusCode, 409)
  t.equal(results[0].json().code, 'FST_SESS_CONFLICT')
  const data = await dump(app, cookie)
  t.equal(data.fast, true)
  t.equal(data.slow, undefined)
})

t.test("conflict: 'overwrite' is last write wins", async (t) => {
  const { app, cookie } = await setup(t, { conflict: 'overwrite' })
  const [slow, fast] = await races.run(() => post(app, '/held-set/slow', cookie), () => post(app, '/set/fast', cookie))
  t.equal(slow.statusCode, 200)
  t.equal(fast.statusCode, 200)
  const data = await dump(app, cookie)
  t.equal(data.slow, true)
  t.equal(data.fast, undefined, 'the earlier commit was overwritten')
})

t.test('a write racing a destroy does not bring the session back', async (t) => {
  const { app, cookie } = await setup(t)
  const [slow, logout] = await races.run(() => post(app, '/held-set/late', cookie), () => post(app, '/logout', cookie))
  t.equal(logout.statusCode, 200)
  t.equal(slow.statusCode, 409)
  t.match(slow.json().message, /destroyed/)
  t.same(await session(app, cookie), { data: {}, isNew: true })
})

t.test('a write racing a regenerate does not bring the old session back', async (t) => {
  const { app, cookie } = await setup(t)
  const [slow, login] = await races.run(() => post(app, '/held-set/late', cookie), () => post(app, '/login', cookie))
  t.equal(login.statusCode, 200)
  t.equal(slow.statusCode, 409, 'the old-id write is refused, not silently dropped')
  t.same(await session(app, cookie), { data: {}, isNew: true }, 'old id stays dead')
  t.same((await session(app, sessionCookie(login))).data, { user: 'bob' })
})

t.test('a route can override the conflict policy; bad route settings fail at startup', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const app = await build({ store }, (app) => {
    routes(app)
    app.post('/strict-held/:key', { config: { session: { conflict: 'error' } } }, async (req) => {
      req.session.set((req.params as { key: string }).key, true)
      await races.wait()
      return 'ok'
    })
  })
  t.teardown(() => app.close())
  const cookie = sessionCookie(await app.inject('/seed')) as string
  const [strict, other] = await races.run(() => post(app, '/strict-held/strict', cookie), () => post(app, '/set/other', cookie))
  t.equal(other.statusCode, 200)
  t.equal(strict.statusCode, 409, "the route's 'error' policy wins over the default 'merge'")
  const [merged] = await races.run(() => post(app, '/held-set/merged', cookie), () => post(app, '/set/again', cookie))
  t.equal(merged.statusCode, 200, 'other routes keep the default')
  const data = await dump(app, cookie)
  t.same([data.strict, data.other, data.merged, data.again], [undefined, true, true, true])
  const bad: Array<[unknown, RegExp]> = [
    [{ conflict: 'ignore' }, /config\.session\.conflict of GET \/bad/],
    [{ policy: 'error' }, /config\.session\.policy of GET \/bad/],
    ['yes', /config\.session of GET \/bad/]
  ]
  for (const [config, message] of bad) {
    await t.rejects(build({ store }, (app) => { app.get('/bad', { config: { session: config as never } }, async () => 'x') }), { code: 'FST_SESS_INVALID_OPTION', message })
  }
})

t.test('update() after the session was destroyed elsewhere fails with a conflict', async (t) => {
  const { app, store, cookie } = await setup(t)
  const app2 = await build({ store }, (app) => {
    routes(app)
    app.post('/late-update', async (req) => {
      await races.wait()
      await req.session.update((s) => { s.set('x', 1) })
      return 'ok'
    })
  })
  t.teardown(() => app2.close())
  const [late] = await races.run(() => post(app2, '/late-update', cookie), () => post(app2, '/logout', cookie))
  t.equal(late.statusCode, 409)
  t.same(await dump(app, cookie), {})
})

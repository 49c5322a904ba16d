import t from 'tap'
import { createHash } from 'node:crypto'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { RedisStore } from '../../src/index'
import { build, sessionCookie } from '../helpers/app'
import { dump, faultyApp, idOf, seed } from '../helpers/faulty-app'
import { failOnHang } from '../helpers/hang'
import { DEBUG, logLines, sessionWarnings, type LogLine } from '../helpers/log-lines'
import { redisForTest } from '../helpers/redis-servers'
import { stateRoutes } from '../helpers/routes'

/** GET /whoami reads a value, then everything. */
function whoami (app: FastifyInstance): void {
  app.get('/whoami', async (req) => ({ user: req.session.get('user') ?? null, data: req.session.data(), isNew: req.session.isNew, id: req.session.id }))
}

/** GET /whoami answered with a fresh session of a new id, and the plugin said why at warn level. */
function assertFresh (t: tap.Test, res: LightMyRequestResponse, cookie: string, lines: LogLine[], warned: number): void {
  t.equal(res.statusCode, 200, 'the route answers 200')
  if (res.statusCode === 200) {
    const body = res.json() as { user: unknown, data: unknown, isNew: boolean, id: string }
    t.same([body.isNew, body.user, body.data], [true, null, {}], 'a fresh, empty session')
    t.not(body.id, idOf(cookie), 'with a new id')
  }
  t.ok(sessionWarnings(lines).length > warned, 'a warn line from the plugin')
}

t.test('a record the store returns in a shape the plugin cannot use gives a fresh session, a warning, and is deleted', async (t) => {
  const now = Date.now()
  const times = { createdAt: now, expiresAt: now + 1e6 }
  const records: Record<string, unknown> = {
    'without data': { version: 1, ...times },
    'data is an array': { data: ['a'], version: 1, ...times },
    'data is a string': { data: 'a', version: 1, ...times },
    'data is null': { data: null, version: 1, ...times },
    'version 0': { data: { a: 1 }, version: 0, ...times },
    'version -1': { data: { a: 1 }, version: -1, ...times },
    'version 1.5': { data: { a: 1 }, version: 1.5, ...times },
    'version "1"': { data: { a: 1 }, version: '1', ...times },
    'version missing': { data: { a: 1 }, ...times },
    'createdAt missing': { data: { a: 1 }, version: 1, expiresAt: now + 1e6 },
    'expiresAt a string': { data: { a: 1 }, version: 1, createdAt: now, expiresAt: String(now + 1e6) },
    'user a number': { data: { a: 1 }, version: 1, ...times, user: 42 },
    'user an object': { data: { a: 1 }, version: 1, ...times, user: { id: 'x' } }
  }
  for (const [name, record] of Object.entries(records)) {
    t.test(name, async (t) => {
      failOnHang(t)
      const { app, store, lines } = await faultyApp(t, {}, whoami)
      const cookie = await seed(app)
      const key = store.keys[store.keys.length - 1]
      store.next('get', { resolve: record })
      assertFresh(t, await app.inject({ url: '/whoami', headers: { cookie } }), cookie, lines, 0)
      t.equal(await store.inner.get(key), undefined, 'the unusable record was deleted')
    })
  }

  t.test('a route that writes starts the new session cleanly', async (t) => {
    failOnHang(t)
    const { app, store } = await faultyApp(t)
    const cookie = await seed(app)
    store.next('get', { resolve: records['without data'] })
    const res = await app.inject({ method: 'POST', url: '/put', query: { key: 'after', value: 'yes' }, headers: { cookie } })
    t.equal(res.statusCode, 200)
    const fresh = sessionCookie(res)
    t.ok(fresh !== undefined && fresh !== cookie, 'a new cookie')
    t.same((await dump(app, fresh ?? cookie)).data, { after: 'yes' })
  })
})

t.test('reload() that meets an unusable record starts over under a new id', async (t) => {
  failOnHang(t)
  const { app, store } = await faultyApp(t, {}, (app) => {
    app.post('/reload', async (req) => {
      const before = req.session.id
      await req.session.reload()
      return { renewed: req.session.id !== before, data: req.session.data() }
    })
  })
  const cookie = await seed(app)
  store.next('get', 'pass', { resolve: { data: [], version: 1, createdAt: Date.now(), expiresAt: Date.now() + 1e6 } })
  const res = await app.inject({ method: 'POST', url: '/reload', headers: { cookie } })
  t.same(res.json(), { renewed: true, data: {} })
})

t.test('a forged or unknown cookie gives a fresh session and a debug line, never a warning', async (t) => {
  failOnHang(t)
  const { app, store, lines } = await faultyApp(t, {}, whoami)
  const cookie = await seed(app)
  await store.inner.destroy(store.keys[0])
  const forged = cookie.slice(0, -2) + (cookie.endsWith('AA') ? 'BB' : 'AA')
  for (const [name, sent] of [['unknown', cookie], ['forged', forged]]) {
    const res = await app.inject({ url: '/whoami', headers: { cookie: sent } })
    t.same([res.statusCode, res.json().isNew, res.json().data], [200, true, {}], `${name}: a fresh session`)
  }
  const debug = lines.filter((line) => line.level === DEBUG && line.msg.startsWith('fastify-sessions:'))
  t.ok(debug.length >= 2, 'a debug line for each')
  t.same(sessionWarnings(lines), [], 'no warning')
})

t.test('RedisStore: a record whose data is truncated JSON gives a fresh session on every route, and is deleted', async (t) => {
  const found = await redisForTest(t)
  if (found === undefined) return
  const client = found
  const { lines, logger } = logLines()
  const app = await build({ store: new RedisStore({ client }) }, (app) => {
    stateRoutes(app)
    whoami(app)
    app.post('/count', async (req) => {
      await req.session.update((s) => { s.set('n', ((s.get('n') as number | undefined) ?? 0) + 1) })
      return { n: req.session.get('n') }
    })
  }, { logger })
  t.teardown(() => app.close())

  /** A session whose stored data no longer parses. */
  async function corrupted (): Promise<{ cookie: string, key: string }> {
    const res = await app.inject({ method: 'POST', url: '/put', query: { key: 'user', value: 'ada' } })
    const id = (res.json() as { id: string }).id
    const key = 'sess:' + createHash('sha256').update(id).digest('base64url')
    t.equal(await client.exists(key), 1, 'the record is where a RedisStore keeps it')
    await client.hset(key, 'd', '{"a":')
    return { cookie: sessionCookie(res) as string, key }
  }

  async function assertDeleted (t: tap.Test, key: string): Promise<void> {
    t.equal(await client.exists(key), 0, 'the bad record no longer exists')
  }

  t.test('a route that never touches the session', async (t) => {
    failOnHang(t, 5000)
    const { cookie } = await corrupted()
    const res = await app.inject({ url: '/anon', headers: { cookie } })
    t.same([res.statusCode, res.body], [200, 'hello'])
  })

  t.test('a route that reads the session', async (t) => {
    failOnHang(t, 5000)
    const { cookie, key } = await corrupted()
    const warned = sessionWarnings(lines).length
    assertFresh(t, await app.inject({ url: '/whoami', headers: { cookie } }), cookie, lines, warned)
    await assertDeleted(t, key)
  })

  for (const [route, url, query] of [['writes', '/put', { key: 'after', value: 'yes' }], ['updates', '/count', {}]] as const) {
    t.test(`a route that ${route}, and the session it starts works`, async (t) => {
      failOnHang(t, 5000)
      const { cookie, key } = await corrupted()
      const warned = sessionWarnings(lines).length
      const res = await app.inject({ method: 'POST', url, query, headers: { cookie } })
      t.equal(res.statusCode, 200, 'the route answers 200')
      t.ok(sessionWarnings(lines).length > warned, 'a warn line from the plugin')
      await assertDeleted(t, key)
      const fresh = sessionCookie(res)
      t.ok(fresh !== undefined && fresh !== cookie, 'a new cookie for a new session')
      const again = await app.inject({ method: 'POST', url, query, headers: { cookie: fresh ?? cookie } })
      t.equal(again.statusCode, 200, 'a write afterwards answers 200')
      const expected = url === '/put' ? { after: 'yes' } : { n: 2 }
      t.same((await dump(app, fresh ?? cookie)).data, expected, 'and its data reads back')
    })
  }
})

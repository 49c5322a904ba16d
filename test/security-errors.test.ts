import t from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { CookieStore, type FastifySessionsOptions } from '../src/index'
import type { SessionRecord, UserSession } from '../src/store'
import { build, sessionCookie } from './helpers/app'
import { logLines, WARN, type LogLine } from './helpers/log-lines'
import { MapStore } from './helpers/map-store'

// No store error text in any response body: the calls security.test.ts does not reach
// (the per-user index, touch, a CookieStore's revocations store) and failures that do not
// look like errors at all (a plain object with its own statusCode and code).

const DETAIL = 'ECONNREFUSED 10.1.2.3:6379 user=admin password=hunter2'
const LEAKS = /ECONNREFUSED|hunter2|10\.1\.2\.3|E_BACKEND/

type Method = 'get' | 'set' | 'destroy' | 'touch' | 'listUser' | 'destroyUser'

/** The reference store, with methods that fail on demand, the way a lost backend fails. */
class FailingStore extends MapStore {
  failing = new Set<Method>()
  // Some clients reject with objects that carry an HTTP status and a code of their own.
  reason: unknown = new Error(DETAIL)

  #check (method: Method): void {
    if (this.failing.has(method)) throw this.reason
  }

  override async get (key: string): Promise<SessionRecord | undefined> { this.#check('get'); return super.get(key) }
  override async set (key: string, record: SessionRecord, expected: number): Promise<boolean> { this.#check('set'); return super.set(key, record, expected) }
  override async destroy (key: string): Promise<void> { this.#check('destroy'); return super.destroy(key) }
  override async touch (key: string, expiresAt: number): Promise<boolean> { this.#check('touch'); return super.touch(key, expiresAt) }
  override async listUser (user: string): Promise<UserSession[]> { this.#check('listUser'); return super.listUser(user) }
  override async destroyUser (user: string): Promise<number> { this.#check('destroyUser'); return super.destroyUser(user) }
}

function routes (app: FastifyInstance): void {
  app.post('/login', async (req) => { req.session.set('userId', 'ada'); return 'ok' })
  app.get('/me', async (req) => ({ userId: req.session.get('userId') ?? null }))
  app.post('/revoke', async () => ({ ended: await app.sessions.revokeUser('ada') }))
  app.get('/devices', async () => app.sessions.listSessions('ada'))
}

async function app (t: tap.Test, options: Partial<FastifySessionsOptions>): Promise<{ app: FastifyInstance, lines: LogLine[], cookie: string }> {
  const { lines, logger } = logLines()
  const built = await build({ userKey: 'userId', ...options }, routes, { logger })
  t.teardown(() => built.close())
  const cookie = sessionCookie(await built.inject({ method: 'POST', url: '/login' })) as string
  return { app: built, lines, cookie }
}

function assertFixed (t: tap.Test, res: LightMyRequestResponse, lines: LogLine[], what: string): void {
  t.equal(res.statusCode, 503, `${what}: 503`)
  t.same(res.json(), { statusCode: 503, code: 'FST_SESS_STORE_UNAVAILABLE', error: 'Service Unavailable', message: res.json().message }, `${what}: the error's own fields only`)
  t.match(res.json().message, /^fastify-sessions: the session store \w+ (failed|timed out after [\d.]+ s)$/, `${what}: a fixed message`)
  t.notMatch(res.body, LEAKS, `${what}: nothing of the store's error in the body`)
  t.notMatch(JSON.stringify(res.headers), LEAKS, `${what}: nor in a header`)
  t.ok(lines.some((line) => LEAKS.test(JSON.stringify(line))), `${what}: the detail is in the log`)
}

t.test('the per-user index failing: revokeUser() and listSessions() answer a fixed 503', async (t) => {
  const store = new FailingStore()
  const { app: server, lines } = await app(t, { store })
  for (const [method, url, what] of [['destroyUser', '/revoke', 'revokeUser()'], ['listUser', '/devices', 'listSessions()']] as const) {
    store.failing = new Set([method])
    const res = await server.inject({ method: url === '/revoke' ? 'POST' : 'GET', url })
    assertFixed(t, res, lines, what)
  }
})

t.test('touch failing: the reply stands, and the detail is only in the log', async (t) => {
  const store = new FailingStore()
  const { app: server, lines, cookie } = await app(t, { store, rolling: true })
  store.failing = new Set(['touch'])
  const res = await server.inject({ url: '/me', headers: { cookie } })
  t.same([res.statusCode, res.json()], [200, { userId: 'ada' }])
  t.notMatch(res.body + JSON.stringify(res.headers), LEAKS)
  t.ok(lines.some((line) => line.level === WARN && LEAKS.test(JSON.stringify(line))), 'a warn line carries it')
})

t.test("a CookieStore's revocations store failing answers a fixed 503", async (t) => {
  const revocations = new FailingStore()
  const { app: server, lines, cookie } = await app(t, { store: new CookieStore({ revocations }) })
  revocations.failing = new Set(['get', 'set'])
  assertFixed(t, await server.inject({ url: '/me', headers: { cookie } }), lines, 'the revocation check at load')
  assertFixed(t, await server.inject({ method: 'POST', url: '/revoke' }), lines, 'revokeUser()')
})

t.test("a rejection that is not an Error, with its own status and code, is not what the client sees", async (t) => {
  const store = new FailingStore()
  const { app: server, lines, cookie } = await app(t, { store })
  store.reason = { statusCode: 400, status: 400, code: 'E_BACKEND', message: DETAIL, expose: true }
  store.failing = new Set(['get'])
  assertFixed(t, await server.inject({ url: '/me', headers: { cookie } }), lines, 'an object with statusCode 400')
  store.failing = new Set(['set'])
  assertFixed(t, await server.inject({ method: 'POST', url: '/login' }), lines, 'the same at commit')
  store.reason = DETAIL
  store.failing = new Set(['destroyUser'])
  assertFixed(t, await server.inject({ method: 'POST', url: '/revoke' }), lines, 'a bare string')
})

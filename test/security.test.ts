import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { randomBytes } from 'node:crypto'
import { CookieStore, MemoryStore } from '../src/index'
import { build, SECRET, sessionCookie, setCookieLine } from './helpers/app'
import { dump, faultyApp, seed } from './helpers/faulty-app'
import { DEBUG, logLines } from './helpers/log-lines'
import { stateRoutes } from './helpers/routes'

// Hardening a session library owes its users: secrets that are long but guessable, cookie
// name prefixes, cookies moved between names, failed requests, and error bodies.

const RANDOM_SECRET = 'q7Vd2mXk9LpR4sTz8wYb1cNf6hJg3eUa0oIiKxZ'

async function refused (t: tap.Test, options: Record<string, unknown>, option: string, detail: RegExp): Promise<void> {
  await t.rejects(build(options), { code: 'FST_SESS_INVALID_OPTION', message: new RegExp(`"${option}".*${detail.source}`) }, `${option}: ${JSON.stringify(options)}`)
}

t.test('secrets that repeat a character or a short pattern are refused, with a way to make a good one', async (t) => {
  const weak = [
    'x'.repeat(40), 'ab'.repeat(20), 'password'.repeat(5), '0123456789abcdef'.repeat(2), 'abcdefg'.repeat(5),
    // A repeated character or pattern next to a few others.
    'my-secret-' + 'x'.repeat(30), 'a'.repeat(25) + '1234567', 'changeme' + '0'.repeat(24), 'x'.repeat(16) + 'abcdefgh' + 'y'.repeat(16),
    '0123456789abcdef'.repeat(2) + '01234567'
  ]
  for (const secret of weak) await refused(t, { secret }, 'secret', /entry 0 repeats a character or a short pattern.*randomBytes\(32\)/)
  await refused(t, { secret: [SECRET, 'z'.repeat(48)] }, 'secret', /entry 1 repeats/)
  await refused(t, { secret: 'short' }, 'secret', /at least 32 characters.*randomBytes\(32\)/)
  const random = Array.from({ length: 20 }, () => [randomBytes(16).toString('hex'), randomBytes(24).toString('base64url'), randomBytes(32).toString('base64')]).flat()
  for (const secret of [RANDOM_SECRET, SECRET, '0123456789abcdefg'.repeat(2), 'correct horse battery staple, stapled', ...random]) {
    const app = await build({ secret })
    await app.close()
    t.pass(`accepted: ${secret}`)
  }
})

t.test('a __Host- cookie: Secure, Path=/ and no Domain, or registration fails naming the option', async (t) => {
  const name = { cookieName: '__Host-sid' }
  await refused(t, { secret: SECRET, ...name, cookie: { secure: false } }, 'cookie.secure', /__Host-/)
  await refused(t, { secret: SECRET, ...name, cookie: { path: '/app' } }, 'cookie.path', /__Host-/)
  await refused(t, { secret: SECRET, ...name, cookie: { domain: 'example.com' } }, 'cookie.domain', /__Host-/)
  await refused(t, { secret: SECRET, cookieName: '__Secure-sid', cookie: { secure: false } }, 'cookie.secure', /__Secure-/)

  const app = await build(name, (app) => {
    app.get('/w', async (req) => { req.session.set('a', 1); return 'ok' })
    app.get('/scoped', async (req) => { req.session.set('a', 2); req.session.options({ domain: 'example.com' }); return 'ok' })
  })
  t.teardown(() => app.close())
  // Over plain http, where secure: 'auto' would leave Secure out: the prefix decides.
  const line = setCookieLine(await app.inject('/w'), '__Host-sid') as string
  t.match(line, /; Path=\/(;|$)/)
  t.match(line, /; Secure/)
  t.notMatch(line, /Domain=/i)
  const scoped = await app.inject('/scoped')
  t.equal(scoped.statusCode, 500, 'a per-response Domain is refused too')
  t.equal(scoped.json().code, 'FST_SESS_INVALID_OPTION')
  t.equal(setCookieLine(scoped, '__Host-sid'), undefined)
})

t.test('prefixes are matched in any case, and __Http- and __Host-Http- require HttpOnly', async (t) => {
  // Browsers match a prefix case-insensitively: a cookie named __host-sid with a Domain is dropped.
  await refused(t, { secret: SECRET, cookieName: '__host-sid', cookie: { domain: 'example.com' } }, 'cookie.domain', /__Host-/)
  await refused(t, { secret: SECRET, cookieName: '__HOST-sid', cookie: { path: '/app' } }, 'cookie.path', /__Host-/)
  await refused(t, { secret: SECRET, cookieName: '__secure-sid', cookie: { secure: false } }, 'cookie.secure', /__Secure-/)
  await refused(t, { secret: SECRET, cookieName: '__Http-sid', cookie: { httpOnly: false } }, 'cookie.httpOnly', /__Http-/)
  await refused(t, { secret: SECRET, cookieName: '__Http-sid', cookie: { secure: false } }, 'cookie.secure', /__Http-/)
  await refused(t, { secret: SECRET, cookieName: '__Host-Http-sid', cookie: { httpOnly: false } }, 'cookie.httpOnly', /__Host-Http-/)
  await refused(t, { secret: SECRET, cookieName: '__Host-Http-sid', cookie: { domain: 'example.com' } }, 'cookie.domain', /__Host-Http-/)

  const app = await build({ cookieName: '__host-http-sid' }, (app) => {
    app.get('/w', async (req) => { req.session.set('a', 1); return 'ok' })
    app.get('/readable', async (req) => { req.session.set('a', 2); req.session.options({ httpOnly: false }); return 'ok' })
  })
  t.teardown(() => app.close())
  const line = setCookieLine(await app.inject('/w'), '__host-http-sid') as string
  t.match(line, /; Secure/, 'Secure over plain http, as the prefix demands')
  t.match(line, /; HttpOnly/)
  const readable = await app.inject('/readable')
  t.same([readable.statusCode, readable.json().code], [500, 'FST_SESS_INVALID_OPTION'], 'per response too')
  t.match(readable.json().message, /"session\.options\(\)\.httpOnly": cannot be false for a cookie named __Host-Http-/)
})

t.test('a __Secure- cookie may carry a Domain and is always Secure', async (t) => {
  const app = await build({ cookieName: '__Secure-sid', cookie: { domain: 'example.com' } }, (app) => {
    app.get('/w', async (req) => { req.session.set('a', 1); return 'ok' })
  })
  t.teardown(() => app.close())
  const line = setCookieLine(await app.inject('/w'), '__Secure-sid') as string
  t.match(line, /Domain=example\.com/)
  t.match(line, /; Secure/)
})

/** Two registrations sharing a store and a secret, under different cookie names. */
async function twoNames (t: tap.Test, store: () => MemoryStore | CookieStore): Promise<{ a: FastifyInstance, b: FastifyInstance, lines: ReturnType<typeof logLines>['lines'] }> {
  const shared = store()
  const { lines, logger } = logLines()
  const a = await build({ store: shared, cookieName: 'a' }, stateRoutes)
  const b = await build({ store: shared, cookieName: 'b' }, stateRoutes, { logger })
  t.teardown(async () => { await a.close(); await b.close() })
  return { a, b, lines }
}

for (const [label, store] of [['MemoryStore', () => new MemoryStore()], ['CookieStore', () => new CookieStore()]] as const) {
  t.test(`${label}: a cookie moved to another cookie name is refused`, async (t) => {
    const { a, b, lines } = await twoNames(t, store)
    const issued = sessionCookie(await a.inject({ method: 'POST', url: '/put', query: { key: 'user', value: 'ada' } }), 'a') as string
    const value = issued.slice('a='.length)
    t.same((await a.inject({ url: '/dump', headers: { cookie: `a=${value}` } })).json().data, { user: 'ada' }, 'valid under its own name')
    const moved = await b.inject({ url: '/dump', headers: { cookie: `b=${value}` } })
    t.equal(moved.statusCode, 200)
    t.same(moved.json().data, {}, 'a fresh session under the other name')
    t.ok(lines.some((line) => line.level === DEBUG && /fastify-sessions/.test(line.msg)), 'a debug line says why')
  })
}

t.test('a route that fails with a 5xx commits nothing it changed', async (t) => {
  const { app, store } = await faultyApp(t, {}, (app) => {
    app.post('/fail', async (req) => {
      req.session.set('user', 'mallory')
      req.session.set('extra', true)
      throw new Error('the route broke half-way')
    })
    app.post('/saved-then-fail', async (req) => {
      req.session.set('step', 'saved')
      await req.session.save()
      req.session.set('step', 'after save')
      throw new Error('broke after saving')
    })
    app.post('/regenerate-then-fail', async (req) => {
      await req.session.regenerate()
      req.session.set('user', 'bob')
      throw new Error('login broke')
    })
    app.post('/client-error', async (req, reply) => {
      req.session.set('tries', 1)
      return reply.code(422).send({ ok: false })
    })
  })
  const cookie = await seed(app)
  const before = await dump(app, cookie)

  const failed = await app.inject({ method: 'POST', url: '/fail', headers: { cookie } })
  t.equal(failed.statusCode, 500)
  t.equal(sessionCookie(failed), undefined, 'no cookie')
  t.same(await dump(app, cookie), before, 'the stored session is as it was')

  const fresh = await app.inject({ method: 'POST', url: '/fail' })
  t.equal(sessionCookie(fresh), undefined, 'a new session that failed is not created')
  t.equal(store.keys.length, 1, 'only the seeded session was ever written')

  const login = await app.inject({ method: 'POST', url: '/regenerate-then-fail', headers: { cookie } })
  t.equal(login.statusCode, 500)
  t.equal(sessionCookie(login), undefined)
  t.same(await dump(app, cookie), before, 'a login that failed leaves the user as they were')

  await app.inject({ method: 'POST', url: '/saved-then-fail', headers: { cookie } })
  t.same((await dump(app, cookie)).data, { user: 'ada', step: 'saved' }, 'what save() committed stands, nothing after it')

  const invalid = await app.inject({ method: 'POST', url: '/client-error', headers: { cookie } })
  t.equal(invalid.statusCode, 422)
  t.same((await dump(app, cookie)).data, { user: 'ada', step: 'saved', tries: 1 }, 'a 4xx reply still commits')
})

t.test('CookieStore: a route that fails with a 5xx sends no new cookie', async (t) => {
  const app = await build({ store: new CookieStore() }, (app) => {
    stateRoutes(app)
    app.post('/fail', async (req) => { req.session.set('user', 'mallory'); throw new Error('broke') })
  })
  t.teardown(() => app.close())
  const cookie = sessionCookie(await app.inject({ method: 'POST', url: '/put', query: { key: 'user', value: 'ada' } })) as string
  const failed = await app.inject({ method: 'POST', url: '/fail', headers: { cookie } })
  t.equal(failed.statusCode, 500)
  t.equal(sessionCookie(failed), undefined)
  t.same((await app.inject({ url: '/dump', headers: { cookie } })).json().data, { user: 'ada' })
})

t.test('error replies carry a code and a fixed message, never the store\'s own error text', async (t) => {
  const detail = 'ECONNREFUSED 10.1.2.3:6379 password=hunter2'
  const { app, store } = await faultyApp(t, { storeTimeout: 0.05 }, (app) => {
    app.post('/update', async (req) => { await req.session.update((s) => { s.set('n', 1) }); return 'ok' })
    app.post('/regenerate', async (req) => { await req.session.regenerate(); req.session.set('user', 'bob'); return 'ok' })
  })
  const cookie = await seed(app)
  const cases: Array<[string, () => void, { method: 'GET' | 'POST', url: string }]> = [
    ['a failed read', () => store.fail('get', { reject: new Error(detail) }), { method: 'GET', url: '/dump' }],
    ['a failed write', () => store.fail('set', { reject: new Error(detail) }), { method: 'POST', url: '/put?key=a&value=b' }],
    ['a failed update', () => store.fail('set', { reject: new Error(detail) }), { method: 'POST', url: '/update' }],
    ['a failed login', () => store.fail('set', { reject: new Error(detail) }), { method: 'POST', url: '/regenerate' }],
    ['a failed logout', () => store.fail('destroy', { reject: new Error(detail) }), { method: 'POST', url: '/logout' }],
    ['a thrown string', () => store.fail('get', { reject: detail }), { method: 'GET', url: '/dump' }],
    ['a hung store', () => store.fail('get', 'hang'), { method: 'GET', url: '/dump' }],
    ['a conflict', () => store.fail('set', { resolve: false }), { method: 'POST', url: '/update' }]
  ]
  for (const [what, breakIt, request] of cases) {
    store.heal()
    breakIt()
    const res = await app.inject({ ...request, headers: { cookie } })
    t.ok(res.statusCode === 503 || res.statusCode === 409, `${what}: ${res.statusCode}`)
    t.match(res.json(), { code: /^FST_SESS_(STORE_UNAVAILABLE|CONFLICT)$/, message: /^fastify-sessions: / }, what)
    t.notMatch(res.body, /ECONNREFUSED|hunter2|10\.1\.2\.3/, `${what}: nothing of the store's error`)
  }
})

t.test('what reaches the log is the cause, for the operator', async (t) => {
  const { app, store, lines } = await faultyApp(t)
  const cookie = await seed(app)
  store.fail('get', { reject: new Error('ECONNREFUSED 10.1.2.3:6379') })
  await app.inject({ url: '/dump', headers: { cookie } })
  t.ok(lines.some((line) => JSON.stringify(line).includes('ECONNREFUSED 10.1.2.3:6379')), 'the store error is logged')
  t.notOk(lines.some((line) => JSON.stringify(line).includes(cookie.slice(4, 47))), 'the session id is not')
})

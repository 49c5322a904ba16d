import t from 'tap'
import { IncomingMessage } from 'node:http'
import { Socket } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { CookieStore, MemoryStore, type Session } from '../src/index'
import { build, OLD_SECRET, SECRET, sessionCookie } from './helpers/app'
import { dump, faultyApp, idOf, seed } from './helpers/faulty-app'
import { DEBUG } from './helpers/log-lines'
import { stateRoutes } from './helpers/routes'

// fastify.sessions.load(raw): the session of a raw Node request, as socket.io and `upgrade`
// handlers see one. The integrations under test/integrations/ show it on real servers; these
// tests go through each rule with a raw request built in place.

/** A raw Node request carrying `cookie`, as an `upgrade` handler receives it. */
function rawRequest (cookie?: string): IncomingMessage {
  const raw = new IncomingMessage(new Socket())
  raw.method = 'GET'
  raw.url = '/socket'
  if (cookie !== undefined) raw.headers.cookie = `theme=dark; ${cookie}`
  return raw
}

async function rejectsWithCode (t: tap.Test, promise: Promise<unknown>, code: string, what: string): Promise<void> {
  await t.rejects(promise, { code }, what)
}

t.test('a signed cookie of a live session gives that session, its data and id', async (t) => {
  const { app } = await faultyApp(t)
  const cookie = await seed(app, 'user', 'ada')
  const session = await app.sessions.load(rawRequest(cookie))
  t.equal(session.id, idOf(cookie))
  t.equal(session.isNew, false)
  t.same(session.data(), { user: 'ada' })
})

t.test('without a session cookie: a fresh session, no store I/O, and nothing stored', async (t) => {
  const { app, store } = await faultyApp(t)
  store.reset()
  const session = await app.sessions.load(rawRequest())
  t.equal(session.isNew, true)
  t.same(session.data(), {})
  await session.save()
  t.equal(store.total, 0, 'an untouched new session saves nothing')
  session.set('user', 'mallory')
  await rejectsWithCode(t, session.save(), 'FST_SESS_COOKIE_UNDELIVERABLE', 'a new session with data cannot be stored: no client could name it')
  await rejectsWithCode(t, session.update((s) => { s.set('n', 1) }), 'FST_SESS_COOKIE_UNDELIVERABLE', 'nor through update()')
  t.equal(store.calls.set, 0, 'no record was written')
})

t.test('a forged, unknown or revoked cookie gives a fresh session with a new id, logged at debug without the cookie', async (t) => {
  const { app, lines } = await faultyApp(t, { userKey: 'user' })
  const cookie = await seed(app, 'user', 'ada')
  const forged = cookie.slice(0, -2) + (cookie.endsWith('AA') ? 'BB' : 'AA')
  const unknown = await seed(app, 'user', 'bob')
  await app.inject({ method: 'POST', url: '/logout', headers: { cookie: unknown } })
  const revoked = await seed(app, 'user', 'eve')
  await app.sessions.revokeUser('eve')

  for (const [what, sent] of [['forged', forged], ['destroyed', unknown], ['revoked', revoked]]) {
    const session = await app.sessions.load(rawRequest(sent))
    t.equal(session.isNew, true, `${what}: a fresh session`)
    t.not(session.id, idOf(sent), `${what}: never the id of the cookie`)
    t.same(session.data(), {}, `${what}: no data`)
  }
  const refusals = lines.filter((line) => line.level === DEBUG && line.sessionRejected !== undefined)
  t.equal(refusals.length, 3, 'each refusal is logged at debug through the Fastify logger')
  t.notOk(JSON.stringify(lines).includes(idOf(cookie)), 'no log line carries a session id')
})

t.test('an expired session is not loaded', async (t) => {
  const { app } = await faultyApp(t, { idleTimeout: 60 })
  const cookie = await seed(app)
  const now = Date.now()
  t.capture(Date, 'now', () => now + 61_000)
  const session = await app.sessions.load(rawRequest(cookie))
  t.equal(session.isNew, true)
  t.same(session.data(), {})
})

t.test('save() stores a change that the next HTTP request sees; nothing is committed without it', async (t) => {
  const { app } = await faultyApp(t)
  const cookie = await seed(app, 'user', 'ada')
  const unsaved = await app.sessions.load(rawRequest(cookie))
  unsaved.set('seen', 'never saved')
  t.same((await dump(app, cookie)).data, { user: 'ada' }, 'read-only unless saved')

  const session = await app.sessions.load(rawRequest(cookie))
  session.set('room', 'lobby')
  await session.save()
  t.same((await dump(app, cookie)).data, { user: 'ada', room: 'lobby' })
  await session.update((s) => { s.set('visits', 1) })
  t.same((await dump(app, cookie)).data, { user: 'ada', room: 'lobby', visits: 1 }, 'update() of a stored session works too')
})

t.test('what needs a new cookie is refused: regenerate() and options() leave the session as it was', async (t) => {
  const { app } = await faultyApp(t)
  const cookie = await seed(app, 'user', 'ada')
  const session = await app.sessions.load(rawRequest(cookie))
  await rejectsWithCode(t, session.regenerate(), 'FST_SESS_COOKIE_UNDELIVERABLE', 'regenerate()')
  t.throws(() => session.options({ maxAge: 60 }), { code: 'FST_SESS_COOKIE_UNDELIVERABLE', message: /options\(\) needs to send a new session cookie, and sessions\.load\(\) has no reply/ })
  t.equal(session.id, idOf(cookie), 'same id')
  t.same((await dump(app, cookie)).data, { user: 'ada' }, 'the stored session is untouched')
})

t.test('destroy() removes the record: the next HTTP request with the cookie starts afresh', async (t) => {
  const { app } = await faultyApp(t)
  const cookie = await seed(app, 'user', 'ada')
  const session = await app.sessions.load(rawRequest(cookie))
  await session.destroy()
  const after = await dump(app, cookie)
  t.equal(after.isNew, true)
  t.same(after.data, {})
})

t.test('a session destroyed by a request meanwhile is not brought back by save(): 409, and it stays gone', async (t) => {
  const { app, store } = await faultyApp(t, { conflict: 'merge' })
  const cookie = await seed(app, 'user', 'ada')
  const session = await app.sessions.load(rawRequest(cookie))
  await app.inject({ method: 'POST', url: '/logout', headers: { cookie } })
  session.set('room', 'lobby')
  await t.rejects(session.save(), { code: 'FST_SESS_CONFLICT', statusCode: 409 })
  t.equal(store.records.size, 0, 'no record came back')
})

t.test('a store that does not answer rejects the load with FST_SESS_STORE_UNAVAILABLE within storeTimeout', async (t) => {
  const { app, store } = await faultyApp(t, { storeTimeout: 0.05 })
  const cookie = await seed(app)
  store.fail('get', 'hang')
  await rejectsWithCode(t, app.sessions.load(rawRequest(cookie)), 'FST_SESS_STORE_UNAVAILABLE', 'a hung store')
  store.fail('get', 'reject')
  await rejectsWithCode(t, app.sessions.load(rawRequest(cookie)), 'FST_SESS_STORE_UNAVAILABLE', 'a failing store')
})

t.test('a cookie signed with an earlier secret loads and saves; the client keeps its cookie', async (t) => {
  const store = new MemoryStore()
  const before = await build({ store, secret: OLD_SECRET }, stateRoutes)
  t.teardown(() => before.close())
  const cookie = sessionCookie(await before.inject({ method: 'POST', url: '/put', query: { key: 'user', value: 'ada' } })) as string
  const app = await build({ store, secret: [SECRET, OLD_SECRET], cookie: { maxAge: 3600 } }, stateRoutes)
  t.teardown(() => app.close())
  const session = await app.sessions.load(rawRequest(cookie))
  session.set('room', 'lobby')
  session.touch()
  await session.save()
  t.same((await dump(app, cookie)).data, { user: 'ada', room: 'lobby' }, 'saved under the cookie the client holds')
})

t.test('CookieStore: the data lives in the cookie, so changing or destroying it is refused; reading works', async (t) => {
  const app = await build({ store: new CookieStore() }, stateRoutes)
  t.teardown(() => app.close())
  const cookie = sessionCookie(await app.inject({ method: 'POST', url: '/put', query: { key: 'user', value: 'ada' } })) as string
  const session = await app.sessions.load(rawRequest(cookie))
  t.same(session.data(), { user: 'ada' })
  await session.save()
  t.pass('a save() with nothing changed is allowed')
  session.set('room', 'lobby')
  await rejectsWithCode(t, session.save(), 'FST_SESS_COOKIE_UNDELIVERABLE', 'save() of a change')
  await rejectsWithCode(t, session.update(() => {}), 'FST_SESS_COOKIE_UNDELIVERABLE', 'update()')
  await rejectsWithCode(t, session.destroy(), 'FST_SESS_COOKIE_UNDELIVERABLE', 'destroy()')
})

t.test('anything but a raw request is refused with FST_SESS_NOT_A_REQUEST', async (t) => {
  const app: FastifyInstance = await build()
  t.teardown(() => app.close())
  const load = app.sessions.load as (raw: unknown) => Promise<Session>
  await t.rejects(load({ id: 'a socket.io socket' }), { code: 'FST_SESS_NOT_A_REQUEST', message: /not an object without headers/ })
  await t.rejects(load(undefined), { code: 'FST_SESS_NOT_A_REQUEST', message: /not undefined/ })
  await t.rejects(load(null), { code: 'FST_SESS_NOT_A_REQUEST', message: /not null/ })
})

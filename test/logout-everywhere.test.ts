import t from 'tap'
import { CookieStore, MemoryStore, type FastifySessionsOptions, type SessionRecord, type SessionStore } from '../src/index'
import { build, OLD_SECRET, SECRET, sessionCookie } from './helpers/app'
import { accountRoutes, login, races, revocationScenarios, whoIs, type RevocationSetup } from './helpers/logout-everywhere'

/** A MemoryStore without its per-user index: revocation then works through stamps. */
function storeWithoutIndex (inner = new MemoryStore()): SessionStore {
  return {
    get: (key) => inner.get(key),
    set: (key, record, expected) => inner.set(key, record, expected),
    destroy: (key) => inner.destroy(key),
    touch: (key, expiresAt) => inner.touch(key, expiresAt),
    close: () => inner.close()
  }
}

/** Every record a store is given, by key. */
function recording (inner: SessionStore): { store: SessionStore, written: Map<string, SessionRecord> } {
  const written = new Map<string, SessionRecord>()
  const store: SessionStore = {
    get: (key) => inner.get(key),
    set: (key, record, expected) => { written.set(key, structuredClone(record)); return inner.set(key, record, expected) },
    destroy: (key) => inner.destroy(key),
    touch: (key, expiresAt) => inner.touch?.(key, expiresAt) ?? Promise.resolve(false),
    listUser: (user) => (inner.listUser as NonNullable<SessionStore['listUser']>)(user),
    destroyUser: (user) => (inner.destroyUser as NonNullable<SessionStore['destroyUser']>)(user)
  }
  return { store, written }
}

// The three ways sessions are kept, each with logout everywhere on.
const setups: RevocationSetup[] = [
  { name: 'MemoryStore (per-user index)', counts: true, options: () => ({ store: new MemoryStore(), userKey: 'userId' }) },
  { name: 'a store without an index (stamps)', counts: false, options: () => ({ store: storeWithoutIndex(), userKey: 'userId' }) },
  { name: 'CookieStore with a revocation store (stamps)', counts: false, options: () => ({ store: new CookieStore({ revocations: new MemoryStore() }), userKey: 'userId' }) }
]

for (const setup of setups) revocationScenarios(t, setup)

t.test('listSessions: times and chosen metadata of the live sessions, most recent first, never an id', async (t) => {
  let now = Date.now()
  t.capture(Date, 'now', () => now)
  const app = await build({ store: new MemoryStore(), userKey: 'userId', idleTimeout: 3600 }, accountRoutes)
  t.teardown(() => app.close())
  const phone = await login(app, 'ada', undefined, 'phone')
  const created = now
  now += 60_000
  await login(app, 'ada', undefined, 'laptop')
  await login(app, 'bob', undefined, 'tablet')
  const listed = await app.sessions.listSessions('ada', { meta: (data) => ({ device: data.device }) })
  t.same(listed.map((s) => s.device), ['laptop', 'phone'])
  t.same(listed[1], { device: 'phone', createdAt: created, lastActive: created, expiresAt: created + 3_600_000 })
  t.notMatch(JSON.stringify(listed), phone.slice(4, 20), 'no cookie or id in the listing')
  t.same(Object.keys(listed[0]).sort(), ['createdAt', 'device', 'expiresAt', 'lastActive'])
  now += 3_599_000
  t.same((await app.sessions.listSessions('ada')).length, 1, 'an expired session is not listed')
  t.same(await app.sessions.listSessions('ada'), [{ createdAt: created + 60_000, lastActive: created + 60_000, expiresAt: created + 3_660_000 }], 'no metadata unless chosen')
})

t.test('records carry a digest of the user, never the id; a function can name the user', async (t) => {
  const { store, written } = recording(new MemoryStore())
  const app = await build({ store, userKey: (data) => (data.account as { id?: number } | undefined)?.id }, (app) => {
    app.post('/in', async (req) => { req.session.set('account', { id: 42 }); return 'ok' })
  })
  t.teardown(() => app.close())
  await app.inject({ method: 'POST', url: '/in' })
  const [record] = written.values()
  t.match(record.user, /^[A-Za-z0-9_-]{43}$/)
  t.notMatch(record.user, /42/)
  t.equal((await app.sessions.listSessions(42)).length, 1, 'a number names the same user')
  t.equal((await app.sessions.listSessions('42')).length, 1, 'as its string does')
  t.equal(await app.sessions.revokeUser(42), 1)
})

t.test('sessions filed under an older secret are listed and revoked after a rotation', async (t) => {
  const store = new MemoryStore()
  const before = await build({ store, userKey: 'userId', secret: OLD_SECRET }, accountRoutes)
  const cookie = await login(before, 'ada')
  await before.close()
  const after = await build({ store, userKey: 'userId', secret: [SECRET, OLD_SECRET] }, accountRoutes)
  t.teardown(() => after.close())
  t.equal(await whoIs(after, cookie), 'ada')
  t.equal((await after.sessions.listSessions('ada')).length, 1)
  t.equal(await after.sessions.revokeUser('ada'), 1)
  t.equal(await whoIs(after, cookie), null)
})

t.test('encryptAtRest: the listing opens the sealed records', async (t) => {
  const app = await build({ store: new MemoryStore(), userKey: 'userId', encryptAtRest: true }, accountRoutes)
  t.teardown(() => app.close())
  await login(app, 'ada', undefined, 'phone')
  t.same((await app.sessions.listSessions('ada', { meta: (data) => ({ device: data.device }) })).map((s) => s.device), ['phone'])
})

t.test('revocation stamps are shared by every process using the revocation store', async (t) => {
  const revocations = new MemoryStore()
  const options = (): Partial<FastifySessionsOptions> => ({ store: new CookieStore({ revocations }), userKey: 'userId' })
  const one = await build(options(), accountRoutes)
  const two = await build(options(), accountRoutes)
  t.teardown(() => Promise.all([one.close(), two.close()]))
  const cookie = await login(one, 'ada')
  t.equal(await whoIs(two, cookie), 'ada')
  await one.sessions.revokeUser('ada')
  t.equal(await whoIs(two, cookie), null, 'the other process sees it at the next load')
})

t.test('revocationCache: a stamp read answers later loads until it is that old', async (t) => {
  let now = Date.now()
  t.capture(Date, 'now', () => now)
  const revocations = new MemoryStore()
  const reads: string[] = []
  const counted: SessionStore = { ...storeWithoutIndex(revocations), get: (key) => { reads.push(key); return revocations.get(key) } }
  const other = await build({ store: new CookieStore({ revocations: counted }), userKey: 'userId' }, accountRoutes)
  const app = await build({ store: new CookieStore({ revocations: counted, revocationCache: 5 }), userKey: 'userId' }, accountRoutes)
  t.teardown(() => Promise.all([app.close(), other.close()]))
  const cookie = await login(app, 'ada')
  await whoIs(app, cookie)
  await whoIs(app, cookie)
  t.equal(reads.length, 1, 'one read for two loads')
  await other.sessions.revokeUser('ada')
  now += 1
  t.equal(await whoIs(app, cookie), 'ada', 'another process\'s revocation waits for the cache')
  now += 5000
  t.equal(await whoIs(app, cookie), null, 'and is seen once the cached read is that old')
})

t.test('a regenerate racing a logout of the session it replaces leaves no session (no userKey needed)', async (t) => {
  const app = await build({}, accountRoutes)
  t.teardown(() => app.close())
  const cookie = await login(app, 'ada')
  const [held, logout] = await races.run(
    () => app.inject({ method: 'POST', url: '/login-held?user=ada', headers: { cookie } }),
    () => app.inject({ method: 'POST', url: '/logout', headers: { cookie } })
  )
  t.equal(logout.statusCode, 200)
  t.equal(held.statusCode, 409)
  t.equal(held.json().code, 'FST_SESS_CONFLICT')
  t.equal(sessionCookie(held), undefined)
})

t.test('misuse fails with coded errors', async (t) => {
  const plain = await build({}, accountRoutes)
  t.teardown(() => plain.close())
  await t.rejects(plain.sessions.revokeUser('ada'), { code: 'FST_SESS_NO_USER_INDEX', message: /userKey/ })
  const stamped = await build({ store: storeWithoutIndex(), userKey: 'userId' }, accountRoutes)
  t.teardown(() => stamped.close())
  await t.rejects(stamped.sessions.listSessions('ada'), { code: 'FST_SESS_NO_USER_INDEX', message: /listSessions\(\) needs a store with a per-user index/ })
  const indexed = await build({ store: new MemoryStore(), userKey: 'userId' }, (app) => {
    accountRoutes(app)
    app.post('/odd', async (req) => { req.session.set('userId', { not: 'an id' }); return 'ok' })
  })
  t.teardown(() => indexed.close())
  for (const bad of [undefined, null, '', {}, Number.NaN]) {
    await t.rejects(indexed.sessions.revokeUser(bad as unknown as string), { code: 'FST_SESS_INVALID_USER' }, String(bad))
  }
  const odd = await indexed.inject({ method: 'POST', url: '/odd' })
  t.equal(odd.statusCode, 500)
  t.equal(odd.json().code, 'FST_SESS_INVALID_USER')
})

t.test('registration refuses logout everywhere it could not honour', async (t) => {
  await t.rejects(build({ userKey: 7 as unknown as string }), { code: 'FST_SESS_INVALID_OPTION', message: /"userKey"/ })
  await t.rejects(build({ userKey: '' }), { code: 'FST_SESS_INVALID_OPTION', message: /"userKey"/ })
  await t.rejects(build({ store: new CookieStore(), userKey: 'userId' }), { code: 'FST_SESS_INVALID_OPTION', message: /"userKey": needs a store that can end sessions/ })
  const half = { ...storeWithoutIndex(), listUser: async () => [] }
  await t.rejects(build({ store: half }), { code: 'FST_SESS_INVALID_OPTION', message: /"store": must have both listUser\(\) and destroyUser\(\)/ })
  t.throws(() => new CookieStore({ revocations: {} as SessionStore }), { code: 'FST_SESS_INVALID_OPTION', message: /CookieStore revocations/ })
  t.throws(() => new CookieStore({ revocationCache: -1 }), { code: 'FST_SESS_INVALID_OPTION', message: /CookieStore revocationCache/ })
  t.equal(new CookieStore({ revocationCache: 0 }).revocationCache, 0)
})

t.test('a store failure while revoking or listing is FST_SESS_STORE_UNAVAILABLE', async (t) => {
  const inner = new MemoryStore()
  const failing: SessionStore = {
    ...storeWithoutIndex(inner),
    listUser: async () => { throw new Error('down') },
    destroyUser: async () => { throw new Error('down') }
  }
  const app = await build({ store: failing, userKey: 'userId' }, accountRoutes)
  t.teardown(() => app.close())
  await t.rejects(app.sessions.revokeUser('ada'), { code: 'FST_SESS_STORE_UNAVAILABLE' })
  await t.rejects(app.sessions.listSessions('ada'), { code: 'FST_SESS_STORE_UNAVAILABLE' })
  const stamps = await build({ store: { ...storeWithoutIndex(inner), set: async () => { throw new Error('down') } }, userKey: 'userId' }, accountRoutes)
  t.teardown(() => stamps.close())
  await t.rejects(stamps.sessions.revokeUser('ada'), { code: 'FST_SESS_STORE_UNAVAILABLE' })
})

t.test('a listing leaves out what the plugin cannot use, and refuses what is not a list', async (t) => {
  const inner = new MemoryStore()
  const { store, written } = recording(inner)
  const sealed = await build({ store, userKey: 'userId', encryptAtRest: true }, accountRoutes)
  t.teardown(() => sealed.close())
  await login(sealed, 'ada')
  await login(sealed, 'ada')
  t.equal((await sealed.sessions.listSessions('ada')).length, 2)
  const [[key, record]] = written
  await inner.set(key, { ...record, data: { sealed: 'not a sealed value' }, version: record.version + 1 }, record.version)
  t.equal((await sealed.sessions.listSessions('ada')).length, 1, 'a record that does not open is left out')

  const odd = await build({
    store: { ...storeWithoutIndex(), listUser: async () => [{ key: 'k', record: { data: 'x' } }, { key: 7 }] as never, destroyUser: async () => 0 },
    userKey: 'userId'
  }, accountRoutes)
  t.teardown(() => odd.close())
  t.same(await odd.sessions.listSessions('ada'), [], 'entries of the wrong shape are left out')
  const notList = await build({ store: { ...storeWithoutIndex(), listUser: async () => 'nope' as never, destroyUser: async () => 0 }, userKey: 'userId' }, accountRoutes)
  t.teardown(() => notList.close())
  await t.rejects(notList.sessions.listSessions('ada'), { code: 'FST_SESS_STORE_UNAVAILABLE' })
})

t.test('stamps: a forged cookie is refused before any stamp lookup; a custom stateless store can take revocations', async (t) => {
  const codec = new CookieStore()
  const custom = {
    stateless: true as const,
    maxCookieBytes: 4096,
    encode: (session: Parameters<CookieStore['encode']>[0]) => codec.encode(session),
    decode: (payload: Buffer) => codec.decode(payload),
    revocations: new MemoryStore()
  }
  const app = await build({ store: custom, userKey: 'userId' }, accountRoutes)
  t.teardown(() => app.close())
  t.equal(await whoIs(app, 'sid=forged'), null)
  const cookie = await login(app, 'ada')
  t.equal(await whoIs(app, cookie), 'ada')
  await app.sessions.revokeUser('ada')
  t.equal(await whoIs(app, cookie), null)
})

import { createHook } from 'node:async_hooks'
import { Writable } from 'node:stream'
import type { FastifyInstance, FastifyRequest, LightMyRequestResponse } from 'fastify'
import t from 'tap'
import { KeyRing } from '../src/crypto/key-ring'
import { seal, unseal } from '../src/crypto/seal'
import { CookieStore, type FastifySessionsOptions, type SessionCryptoOptions, type StatelessStore } from '../src/index'
import { basicRoutes } from './helpers/routes'
import { build, OLD_SECRET, SECRET, sessionCookie, setCookieLine } from './helpers/app'

type Mode = NonNullable<SessionCryptoOptions['offload']>
const T0 = 1_700_000_000_000

interface LogLine { level: number, msg: string, sessionRejected?: string, err?: { code?: string, message?: string } }

// Changes every array and object value in place, one and two levels down.
function changeInside (session: FastifyRequest['session']): void {
  for (const key of Object.keys(session.data())) {
    const value = session.get(key) as unknown
    if (Array.isArray(value)) value.push('added')
    else if (value !== null && typeof value === 'object') {
      for (const inner of Object.values(value)) if (Array.isArray(inner)) inner.push('added')
      Object.assign(value, { added: true })
    }
  }
}

function routes (app: FastifyInstance): void {
  app.post('/login', async (req) => { await req.session.regenerate(); req.session.set('user', 'ada'); return { id: req.session.id } })
  app.post('/logout', async (req) => { await req.session.destroy(); return 'bye' })
  app.get('/reload', async (req) => { req.session.set('n', 99); await req.session.reload(); return { n: req.session.get('n') ?? null } })
  app.get('/count', async (req) => {
    await req.session.update((s) => { s.set('c', ((s.get('c') as number | undefined) ?? 0) + 1) })
    return { c: req.session.get('c') }
  })
  app.get('/flash', async (req) => { req.session.flash('info', 'saved'); await req.session.save(); return 'ok' })
  app.get('/flashes', async (req) => req.session.flashes('info'))
  app.get('/fresh-reload', async (req) => { req.session.set('n', 5); await req.session.reload(); return { n: req.session.get('n') ?? null } })
  app.get('/bigint', async (req) => { req.session.set('count', 1n as unknown as number); return 'no' })
  app.get('/circular', async (req) => {
    req.session.set('tree', { name: 'root' })
    const tree = req.session.get('tree') as Record<string, unknown>
    tree.self = tree
    return 'no'
  })
  app.get('/save-twice', async (req, reply) => {
    req.session.set('a', 1)
    await req.session.save()
    req.session.set('b', 2)
    await req.session.save()
    reply.setCookie('theme', 'dark')
    req.session.set('c', 3)
    return 'ok'
  })
  app.get('/save-then-change', async (req) => {
    req.session.set('a', 1)
    await req.session.save()
    req.session.set('b', 2)
    return 'ok'
  })
  basicRoutes(app)
  app.get('/remember', async (req) => { req.session.options({ maxAge: 3600 }); return 'ok' })
  app.get('/keep-user', async (req) => {
    req.session.set('user', 'ada')
    await req.session.regenerate(['user'])
    return req.session.data()
  })
  app.get('/destroy-then-set', async (req) => {
    await req.session.destroy()
    req.session.set('n', 1)
    return 'no'
  })
  app.get('/clear', async (req) => { req.session.clear(); return req.session.data() })
  app.get('/dump', async (req) => req.session.data())
  app.post('/put-many', async (req) => { for (const [key, value] of Object.entries(req.body as object)) req.session.set(key, value); return 'ok' })
  app.get('/change-then-fail', async (req) => {
    req.session.set('n', 42)
    req.session.delete('s')
    req.session.set('added', true)
    throw new Error('route failed')
  })
  app.get('/change-inside-then-fail', async (req) => {
    changeInside(req.session)
    throw new Error('route failed')
  })
  app.get('/change-inside-then-reload', async (req) => {
    changeInside(req.session)
    await req.session.reload()
    return req.session.data()
  })
  app.get('/big/:size', async (req) => {
    req.session.set('big', 'x'.repeat(Number((req.params as { size: string }).size)))
    return 'ok'
  })
}

// Seals on the main thread unless the options say otherwise: the offload mode changes where
// the AES runs, not what a session does, so the lifecycle runs once and each other mode
// gets a smoke test (see 'offload modes' below).
async function setup (t: tap.Test, options: Partial<FastifySessionsOptions> = {}) {
  const lines: LogLine[] = []
  const stream = new Writable({ write (chunk, _enc, done) { lines.push(JSON.parse(String(chunk))); done() } })
  const app = await build({ store: new CookieStore(), ...options }, routes, { logger: { level: 'debug', stream } })
  t.teardown(() => app.close())
  const rejected = (): string[] => lines.flatMap((l) => l.sessionRejected === undefined ? [] : [l.sessionRejected])
  return { app, lines, rejected }
}

function valueOf (cookie: string): string {
  return cookie.slice(cookie.indexOf('=') + 1)
}

// Reads a cookie's payload the way an attacker cannot: with the secret.
function plaintextOf (cookie: string, secrets: string[] = [SECRET], name = 'sid'): Buffer {
  const opened = unseal(new KeyRing(secrets), name, valueOf(cookie))
  if (!opened.ok) throw new Error(`cookie does not open: ${opened.reason}`)
  return opened.plaintext
}

function payloadOf (cookie: string, secrets: string[] = [SECRET]): unknown[] {
  const session = new CookieStore().decode(plaintextOf(cookie, secrets))
  if (session === undefined) throw new Error('payload does not decode')
  return [session.id, session.createdAt, session.lastActive, session.data]
}

// A payload in the CookieStore's layout, with any field as the test wants it.
function rawPayload (createdAt: number, lastActive: number, json: string, format = 1): Buffer {
  const fixed = Buffer.alloc(45)
  fixed[0] = format
  fixed.fill(7, 1, 33)
  fixed.writeUIntBE(createdAt, 33, 6)
  fixed.writeUIntBE(lastActive, 39, 6)
  return Buffer.concat([fixed, Buffer.from(json)])
}

function json (res: LightMyRequestResponse): unknown {
  return res.json()
}

t.test('a session round-trips in the cookie with the secure defaults', async (t) => {
  const { app } = await setup(t)
  const anon = await app.inject('/anon')
  t.equal(anon.headers['set-cookie'], undefined, 'anonymous: no cookie')
  t.equal((await app.inject('/read')).headers['set-cookie'], undefined, 'untouched new session: no cookie')
  const first = await app.inject('/write')
  const line = setCookieLine(first) as string
  t.match(line, /^sid=[A-Za-z0-9_-]+; Path=\/; HttpOnly; SameSite=Lax$/)
  t.equal(first.headers['cache-control'], 'no-store')
  const cookie = sessionCookie(first) as string
  const [id, createdAt, lastActive, data] = payloadOf(cookie)
  t.match(id, /^[A-Za-z0-9_-]{43}$/, 'a 256-bit id inside')
  t.equal(typeof createdAt, 'number')
  t.ok((lastActive as number) - (createdAt as number) < 1000, 'last active when sealed')
  t.same(data, { n: 1 })
  t.notOk(cookie.includes('"n"'), 'the data is not readable in the cookie')
  const second = await app.inject({ url: '/write', headers: { cookie } })
  t.same(json(second), { n: 2 })
  t.same(json(await app.inject({ url: '/read', headers: { cookie: sessionCookie(second) } })), { n: 2, isNew: false })
})

t.test('a read-only request sends no cookie; an in-place change is saved', async (t) => {
  const { app } = await setup(t)
  const cookie = sessionCookie(await app.inject('/cart'))
  const read = await app.inject({ url: '/read', headers: { cookie } })
  t.equal(read.headers['set-cookie'], undefined)
  const pushed = await app.inject({ url: '/cart', headers: { cookie } })
  t.same(json(pushed), ['a', 'b'])
  t.same(payloadOf(sessionCookie(pushed) as string)[3], { cart: ['a', 'b'] })
})

t.test('the idle deadline moves by re-sealing, throttled, and is enforced from the sealed time', async (t) => {
  let now = T0
  t.capture(Date, 'now', () => now)
  const { app, rejected } = await setup(t, { idleTimeout: 100 })
  const cookie = sessionCookie(await app.inject('/write')) as string
  now += 5_000
  t.equal((await app.inject({ url: '/read', headers: { cookie } })).headers['set-cookie'], undefined, 'within 10%: no new cookie')
  now += 6_000
  const touched = sessionCookie(await app.inject({ url: '/read', headers: { cookie } })) as string
  t.ok(touched, 'past 10% of the idle window: re-sealed')
  t.same(payloadOf(touched).slice(1), [T0, T0 + 11_000, { n: 1 }], 'same created time and data, new last-active time')
  now += 95_000
  t.same(json(await app.inject({ url: '/read', headers: { cookie: touched } })), { n: 1, isNew: false }, 'the touched cookie lives on')
  const replayed = await app.inject({ url: '/read', headers: { cookie } })
  t.same(json(replayed), { n: null, isNew: true }, 'the old cookie is past its idle deadline')
  t.same(rejected(), ['idle timeout passed'])
})

t.test('an explicit touch() re-seals at once', async (t) => {
  let now = T0
  t.capture(Date, 'now', () => now)
  const { app } = await setup(t, { idleTimeout: 100 })
  const cookie = sessionCookie(await app.inject('/write'))
  now += 1_000
  const touched = sessionCookie(await app.inject({ url: '/touch', headers: { cookie } })) as string
  t.equal(payloadOf(touched)[2], T0 + 1_000)
})

t.test('the absolute timeout holds however often the cookie is re-sealed', async (t) => {
  let now = T0
  t.capture(Date, 'now', () => now)
  const { app, rejected } = await setup(t, { idleTimeout: 60, absoluteTimeout: 150 })
  let cookie = sessionCookie(await app.inject('/write'))
  for (let i = 0; i < 3; i++) {
    now += 40_000
    const res = await app.inject({ url: '/write', headers: { cookie } })
    t.same(json(res), { n: i + 2 }, `active at ${(i + 1) * 40}s`)
    cookie = sessionCookie(res)
  }
  now += 40_000
  t.same(json(await app.inject({ url: '/write', headers: { cookie } })), { n: 1 }, 'past 150 s: fresh session')
  t.same(rejected(), ['absolute timeout passed'])
})

t.test('regenerate() issues a new id with fresh data; destroy() expires the cookie', async (t) => {
  const { app } = await setup(t)
  const cookie = sessionCookie(await app.inject('/write')) as string
  const before = payloadOf(cookie)[0]
  const login = await app.inject({ method: 'POST', url: '/login', headers: { cookie } })
  const after = payloadOf(sessionCookie(login) as string)
  t.not(after[0], before, 'a new id')
  t.equal(after[0], (json(login) as { id: string }).id)
  t.same(after[3], { user: 'ada' })
  const logout = await app.inject({ method: 'POST', url: '/logout', headers: { cookie: sessionCookie(login) } })
  t.match(setCookieLine(logout), /^sid=; .*Expires=Thu, 01 Jan 1970 00:00:00 GMT/)
})

t.test('reload(), update(), flash() and save() work without a store', async (t) => {
  const { app } = await setup(t)
  const cookie = sessionCookie(await app.inject('/write'))
  const reloaded = await app.inject({ url: '/reload', headers: { cookie } })
  t.same(json(reloaded), { n: 1 }, 'back to the data the cookie held')
  t.equal(reloaded.headers['set-cookie'], undefined)
  t.same(json(await app.inject('/fresh-reload')), { n: null }, 'a new session reloads to nothing')
  const counted = await app.inject({ url: '/count', headers: { cookie } })
  t.same(json(counted), { c: 1 })
  t.same(payloadOf(sessionCookie(counted) as string)[3], { n: 1, c: 1 })
  const flashed = await app.inject({ url: '/flash', headers: { cookie } })
  t.same(json(await app.inject({ url: '/flashes', headers: { cookie: sessionCookie(flashed) } })), ['saved'])
})

t.test('save() then more changes: one session cookie, the latest', async (t) => {
  const { app } = await setup(t)
  for (const [url, others, data] of [['/save-twice', ['theme=dark'], { a: 1, b: 2, c: 3 }], ['/save-then-change', [], { a: 1, b: 2 }]] as const) {
    const res = await app.inject(url)
    const lines = [res.headers['set-cookie'] ?? []].flat()
    t.equal(lines.filter((l) => l.startsWith('sid=')).length, 1, `${url}: one sid cookie`)
    t.same(lines.filter((l) => !l.startsWith('sid=')).map((l) => l.split(';')[0]), others, `${url}: other cookies kept`)
    t.same(payloadOf(sessionCookie(res) as string)[3], data, `${url}: the last state`)
  }
})

t.test('options(), regenerate(keep), clear() and destroy() being final', async (t) => {
  const { app } = await setup(t)
  const cookie = sessionCookie(await app.inject('/write'))
  const remembered = await app.inject({ url: '/remember', headers: { cookie } })
  t.match(setCookieLine(remembered), /; Max-Age=3600/, 'per-response attributes')
  t.equal(sessionCookie(remembered), cookie, 'same content: the sealed value is re-sent as is')
  const kept = await app.inject({ url: '/keep-user', headers: { cookie } })
  t.same(kept.json(), { user: 'ada' })
  t.same(payloadOf(sessionCookie(kept) as string)[3], { user: 'ada' })
  const cleared = await app.inject({ url: '/clear', headers: { cookie } })
  t.same(cleared.json(), {})
  t.same(payloadOf(sessionCookie(cleared) as string)[3], {})
  const final = await app.inject({ url: '/destroy-then-set', headers: { cookie } })
  t.equal(final.json().code, 'FST_SESS_DESTROYED')
})

t.test('saveUninitialized and rolling', async (t) => {
  const eager = await setup(t, { saveUninitialized: true })
  const first = sessionCookie(await eager.app.inject('/read')) as string
  t.same(payloadOf(first)[3], {}, 'an empty session is sent')
  const rolling = await setup(t, { rolling: true, cookie: { maxAge: 60 } })
  const cookie = sessionCookie(await rolling.app.inject('/write'))
  const again = await rolling.app.inject({ url: '/read', headers: { cookie } })
  // Rolling moves the idle deadline on every response, so the cookie is sealed again.
  t.same(payloadOf(sessionCookie(again) as string)[3], payloadOf(cookie as string)[3], 'rolling re-sends the session')
  t.match(setCookieLine(again), /Max-Age=60/)
})

t.test('a remembered cookie gives each request data of its own, whatever an earlier request did to its copy', async (t) => {
  const issuing = await setup(t)
  // Another server with the same secret: it opens the cookie once and remembers it; the
  // issuing server knows it from sealing it.
  const other = await setup(t)
  const flat = { n: 1, s: 'x', list: ['a', 'b'], prefs: { theme: 'dark', size: 2 } }
  for (const data of [{ n: 1, s: 'x', constructor: 'c', none: null }, { n: 1, s: 'x', list: [1, 2] }, flat, { n: 1, s: 'x', deep: { list: [1] } }]) {
    const cookie = sessionCookie(await issuing.app.inject({ method: 'POST', url: '/put-many', payload: data })) as string
    for (const [name, { app }] of Object.entries({ issuing, other })) {
      for (let i = 0; i < 3; i++) {
        t.same(json(await app.inject({ url: '/dump', headers: { cookie } })), data, `${name}: request ${i + 1} reads what was sealed`)
        t.equal((await app.inject({ url: '/change-then-fail', headers: { cookie } })).statusCode, 500)
        t.equal((await app.inject({ url: '/change-inside-then-fail', headers: { cookie } })).statusCode, 500)
      }
      t.same(json(await app.inject({ url: '/change-inside-then-reload', headers: { cookie } })), data, `${name}: reload() undoes changes inside values`)
      const cart = await app.inject({ url: '/cart', headers: { cookie } })
      t.same(json(cart), ['a'])
      t.same(json(await app.inject({ url: '/dump', headers: { cookie } })), data, `${name}: a change in another request stays in its own cookie`)
    }
  }
})

t.test('key rotation: an older secret opens and is re-issued; a removed one gives a fresh session', async (t) => {
  const old = await setup(t, { secret: OLD_SECRET })
  const oldCookie = sessionCookie(await old.app.inject('/write')) as string
  const rotated = await setup(t, { secret: [SECRET, OLD_SECRET] })
  const res = await rotated.app.inject({ url: '/read', headers: { cookie: oldCookie } })
  t.same(json(res), { n: 1, isNew: false })
  const reissued = sessionCookie(res) as string
  t.ok(reissued, 're-issued on this response')
  t.same(payloadOf(reissued, [SECRET]), payloadOf(oldCookie, [OLD_SECRET]).slice(0, 2).concat(payloadOf(reissued).slice(2)))
  t.same(payloadOf(reissued)[3], { n: 1 }, 'sealed under the current secret only')
  const current = await rotated.app.inject({ url: '/read', headers: { cookie: reissued } })
  t.equal(current.headers['set-cookie'], undefined, 'a current cookie is not re-issued')
  const retired = await setup(t, { secret: SECRET })
  t.same(json(await retired.app.inject({ url: '/read', headers: { cookie: oldCookie } })), { n: null, isNew: true })
  t.same(retired.rejected(), ['unknown key id'])
})

t.test('the Set-Cookie header stays within 4096 bytes or the request fails, logged, with no cookie', async (t) => {
  const { app, lines } = await setup(t)
  const fits = await app.inject('/big/2900')
  t.equal(fits.statusCode, 200)
  t.ok(Buffer.byteLength(setCookieLine(fits) as string) <= 4096)
  const tooBig = await app.inject({ url: '/big/3100', headers: { cookie: sessionCookie(fits) } })
  t.equal(tooBig.statusCode, 500)
  t.equal(tooBig.json().code, 'FST_SESS_COOKIE_TOO_LARGE')
  t.match(tooBig.json().message, /would be 4\d{3} bytes, over the 4096-byte limit/)
  t.equal(setCookieLine(tooBig), undefined, 'no cookie at all')
  t.ok(lines.some((l) => l.level >= 50 && l.err?.code === 'FST_SESS_COOKIE_TOO_LARGE'), 'logged as an error')
  const still = await app.inject({ url: '/read', headers: { cookie: sessionCookie(fits) } })
  t.equal(still.statusCode, 200, 'the earlier cookie still works')
})

t.test('a value that has no JSON form fails naming the key', async (t) => {
  const { app } = await setup(t)
  for (const [url, key] of [['/bigint', 'count'], ['/circular', 'tree']]) {
    const res = await app.inject(url)
    t.equal(res.statusCode, 500)
    t.equal(res.json().code, 'FST_SESS_NOT_SERIALIZABLE')
    t.match(res.json().message, `"${key}"`)
    t.equal(setCookieLine(res), undefined)
  }
})

t.test('bad cookies give a fresh session and a debug line naming the reason, never a 5xx', async (t) => {
  const { app, rejected } = await setup(t)
  const cookie = sessionCookie(await app.inject('/write')) as string
  const value = valueOf(cookie)
  const bytes = Buffer.from(value, 'base64url')
  const reencode = (b: Buffer): string => b.toString('base64url')
  const cases: Array<[string, string]> = []
  for (let i = 0; i < bytes.length; i++) {
    const flipped = Buffer.from(bytes)
    flipped[i] ^= 0x01 << (i % 8)
    cases.push([`byte ${i} flipped`, reencode(flipped)])
  }
  for (let n = 0; n < value.length; n += 7) cases.push([`truncated to ${n}`, value.slice(0, n)])
  cases.push(['extended', value + 'AAAA'], ['one byte extended', reencode(Buffer.concat([bytes, Buffer.from([0])]))])
  cases.push(['standard base64', bytes.toString('base64')], ['random', reencode(Buffer.alloc(80, 7))])
  cases.push(['oversized', 'A'.repeat(8000)], ['not base64', '%%%%'])
  const version = Buffer.from(bytes)
  version[0] = 2
  cases.push(['unknown format version', reencode(version)])
  const keyId = Buffer.from(bytes)
  keyId.writeUInt32BE((keyId.readUInt32BE(1) + 1) >>> 0, 1)
  cases.push(['unknown key id', reencode(keyId)])
  const sealed = (payload: string | Buffer): string => seal(new KeyRing([SECRET]), 'sid', payload)
  cases.push(['another cookie name', seal(new KeyRing([SECRET]), 'other', plaintextOf(cookie))])
  cases.push(['authentic but not a session', sealed('{"n":1}')])
  cases.push(['authentic, another payload format', sealed(rawPayload(T0, T0, '{}', 2))])
  cases.push(['authentic, too short', sealed(rawPayload(T0, T0, '{}').subarray(0, 46))])
  cases.push(['authentic, no created time', sealed(rawPayload(0, T0, '{}'))])
  cases.push(['authentic, no last-active time', sealed(rawPayload(T0, 0, '{}'))])
  cases.push(['authentic, data not an object', sealed(rawPayload(T0, T0, '[1]'))])
  cases.push(['authentic, data not JSON', sealed(rawPayload(T0, T0, '{"a":'))])
  for (const [name, bad] of cases) {
    const res = await app.inject({ url: '/read', headers: { cookie: `sid=${bad}` } })
    if (res.statusCode !== 200 || (res.json() as { isNew: boolean }).isNew !== true) t.fail(name)
  }
  t.equal(rejected().length, cases.length, 'a debug line for every rejected cookie')
  t.same([...new Set(rejected())].sort(), ['authentication failed', 'malformed', 'unknown format version', 'unknown key id', 'unreadable payload'])
  t.same(json(await app.inject({ url: '/read', headers: { cookie } })), { n: 1, isNew: false }, 'the real cookie still works')
})

t.test('a store whose decode() throws on a payload gives a fresh session, not a 500', async (t) => {
  // As after a deploy that changed a custom store's payload format.
  class Strict extends CookieStore {
    override decode (payload: Buffer) {
      if (payload.includes('"user"')) throw new Error('old format')
      return super.decode(payload)
    }
  }
  const { app, rejected } = await setup(t, { store: new Strict() })
  const cookie = sessionCookie(await app.inject('/keep-user')) as string
  const res = await app.inject({ url: '/read', headers: { cookie } })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { n: null, isNew: true })
  t.same(rejected(), ['unreadable payload'])
})

t.test('a store may encode to any Uint8Array, not only a Buffer', async (t) => {
  const inner = new CookieStore()
  const plain: StatelessStore = {
    stateless: true,
    maxCookieBytes: inner.maxCookieBytes,
    encode: (session) => new Uint8Array(inner.encode(session)),
    decode: (payload) => inner.decode(payload)
  }
  const { app } = await setup(t, { store: plain })
  const cookie = sessionCookie(await app.inject('/write')) as string
  t.same(json(await app.inject({ url: '/read', headers: { cookie } })), { n: 1, isNew: false })
  t.same(json(await app.inject({ url: '/fresh-reload', headers: { cookie } })), { n: 1 }, 'reload() goes back to what was sealed')
})

t.test('a cookie for one cookie name does not open under another', async (t) => {
  const a = await setup(t, { cookieName: 'a' })
  const b = await setup(t, { cookieName: 'b' })
  const cookie = sessionCookie(await a.app.inject('/write'), 'a') as string
  const res = await b.app.inject({ url: '/read', headers: { cookie: `b=${valueOf(cookie)}` } })
  t.same(json(res), { n: null, isNew: true })
  t.same(b.rejected(), ['authentication failed'])
})

t.test('CookieStore options', async (t) => {
  t.equal(new CookieStore().maxCookieBytes, 4096)
  t.equal(new CookieStore({ maxCookieBytes: 1024 }).maxCookieBytes, 1024)
  for (const bad of [100, 5000, 1.5, '4096']) {
    t.throws(() => new CookieStore({ maxCookieBytes: bad as number }), { code: 'FST_SESS_INVALID_OPTION', message: /maxCookieBytes/ })
  }
  const { app } = await setup(t, { store: new CookieStore({ maxCookieBytes: 1024 }) })
  const res = await app.inject('/big/1000')
  t.equal(res.json().code, 'FST_SESS_COOKIE_TOO_LARGE')
  t.match(res.json().message, /over the 1024-byte limit/)
})

t.test('offload modes', async (t) => {
  // One registration per mode: an 'always' pool costs a thread start, paid once here.
  const MODES: Mode[] = ['never', 'always', 'auto']
  const apps = new Map<Mode, Awaited<ReturnType<typeof setup>>>()
  for (const offload of MODES) apps.set(offload, await setup(t, { secret: [SECRET, OLD_SECRET], crypto: { offload } }))
  const old = await setup(t, { secret: OLD_SECRET })
  const oldCookie = sessionCookie(await old.app.inject('/write')) as string
  const retired = await setup(t, { secret: 'a-retired-secret-that-is-long-enough-03' })
  const retiredCookie = sessionCookie(await retired.app.inject('/write')) as string

  for (const offload of ['always', 'auto'] as const) {
    t.test(`'${offload}': writes, reads back, re-issues after a key rotation, refuses a bad cookie`, async (t) => {
      const { app, rejected } = apps.get(offload) as Awaited<ReturnType<typeof setup>>
      const first = sessionCookie(await app.inject('/write')) as string
      t.same(payloadOf(first)[3], { n: 1 }, 'sealed')
      const second = await app.inject({ url: '/write', headers: { cookie: first } })
      t.same(json(second), { n: 2 })
      t.same(json(await app.inject({ url: '/read', headers: { cookie: sessionCookie(second) } })), { n: 2, isNew: false }, 'read back')
      const rotated = await app.inject({ url: '/read', headers: { cookie: oldCookie } })
      t.same(json(rotated), { n: 1, isNew: false }, 'an older secret opens')
      t.same(payloadOf(sessionCookie(rotated) as string, [SECRET])[3], { n: 1 }, 're-issued under the current secret')
      const value = valueOf(first)
      const tampered = value.slice(0, 20) + (value[20] === 'A' ? 'B' : 'A') + value.slice(21)
      for (const bad of [tampered, value.slice(0, 30), valueOf(retiredCookie)]) {
        t.same(json(await app.inject({ url: '/read', headers: { cookie: `sid=${bad}` } })), { n: null, isNew: true }, 'a fresh session')
      }
      t.same(rejected(), ['authentication failed', 'malformed', 'unknown key id'])
      t.same(json(await app.inject({ url: '/read', headers: { cookie: sessionCookie(second) } })), { n: 2, isNew: false }, 'good cookies still open')
    })
  }

  t.test('a cookie sealed in any mode opens in every other mode', async (t) => {
    const cookies = new Map<Mode, string>()
    for (const [writer, { app }] of apps) cookies.set(writer, sessionCookie(await app.inject('/write')) as string)
    for (const [reader, { app }] of apps) {
      for (const [writer, cookie] of cookies) {
        t.same(json(await app.inject({ url: '/read', headers: { cookie } })), { n: 1, isNew: false }, `${writer} -> ${reader}`)
      }
    }
  })
})

/** Counts the worker threads started while the test runs, and those not yet ended. */
function watchThreads (t: tap.Test): { started: () => number, running: () => number, ended: () => Promise<void> } {
  const running = new Set<number>()
  let started = 0
  let onEnded = (): void => {}
  const hook = createHook({
    init (id, type) {
      if (type !== 'WORKER') return
      started++
      running.add(id)
    },
    destroy (id) {
      if (running.delete(id) && running.size === 0) onEnded()
    }
  }).enable()
  t.teardown(() => { hook.disable() })
  return {
    started: () => started,
    running: () => running.size,
    // A thread's handle is released on a turn of the event loop after it ended.
    ended: () => running.size === 0 ? Promise.resolve() : new Promise<void>((resolve) => { onEnded = resolve })
  }
}

t.test('each registration has its own pool, started on first use and ended by app.close()', async (t) => {
  const threads = watchThreads(t)
  const plain = await build({}, routes)
  t.ok(sessionCookie(await plain.inject('/write')))
  await plain.close()
  const idle = await build({ store: new CookieStore(), crypto: { offload: 'always' } })
  const busy = await build({ store: new CookieStore(), crypto: { offload: 'always', threads: 2 } }, routes)
  t.equal(threads.started(), 0, 'no thread without sealing, nor before the first seal')
  t.ok(sessionCookie(await busy.inject('/write')))
  t.equal(threads.started(), 2, "the first seal started the pool's threads")
  await idle.close()
  t.ok(sessionCookie(await busy.inject('/write')), 'closing another registration leaves this pool running')
  t.equal(threads.running(), 2)
  await busy.close()
  await threads.ended()
  t.equal(threads.started(), 2, 'the idle registration never started a thread')
  t.equal(threads.running(), 0, 'app.close() ended every thread')
})

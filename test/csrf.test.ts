import t from 'tap'
import type { FastifyInstance, FastifyServerOptions, InjectOptions, LightMyRequestResponse } from 'fastify'
import { hash } from 'node:crypto'
import { CookieStore, MemoryStore, type FastifySessionsOptions } from '../src/index'
import { build, OLD_SECRET, SECRET, sessionCookie } from './helpers/app'
import { DEBUG, logLines, WARN } from './helpers/log-lines'
import { StoreSpy } from './helpers/store-spy'

type Options = Partial<FastifySessionsOptions>
type Headers = Record<string, string | string[]>

const UNSAFE = ['POST', 'PUT', 'PATCH', 'DELETE'] as const
const SAFE = ['GET', 'HEAD', 'OPTIONS'] as const
// inject() sends `Host: localhost:80`.
const SAME_ORIGIN = 'http://localhost'

/** An app whose routes answer every method at /any and count the calls that reached them. */
async function crossOriginApp (t: tap.Test, options: Options = {}, fastifyOptions: FastifyServerOptions = {}) {
  const { lines, logger } = logLines()
  const reached = { count: 0 }
  const store = new StoreSpy()
  const app = await build({ store, ...options }, (app) => {
    app.route({ method: [...UNSAFE, 'GET', 'OPTIONS'], url: '/any', handler: async () => { reached.count++; return 'ok' } })
    app.post('/hook', { config: { session: { csrf: false } } }, async () => 'hooked')
    app.post('/report', { config: { session: { csrf: { reportOnly: true } } } }, async () => 'reported')
    app.post('/enforce', { config: { session: { csrf: { reportOnly: false } } } }, async () => 'enforced')
    app.post('/no-session', { config: { session: false } }, async () => 'no session')
    app.post('/put', async (req) => { req.session.set('user', 'ada'); return 'ok' })
  }, { logger, ...fastifyOptions })
  t.teardown(async () => {
    await app.close()
    await store.close()
  })
  const send = (method: string, headers: Headers, url = '/any'): Promise<LightMyRequestResponse> =>
    app.inject({ method: method as InjectOptions['method'], url, headers })
  return { app, lines, reached, store, send }
}

const REFUSED: Array<[string, Headers]> = [
  ['Sec-Fetch-Site: cross-site', { 'sec-fetch-site': 'cross-site' }],
  ['Sec-Fetch-Site: same-site', { 'sec-fetch-site': 'same-site' }],
  ['an unknown Sec-Fetch-Site', { 'sec-fetch-site': 'elsewhere' }],
  ['a repeated Sec-Fetch-Site', { 'sec-fetch-site': ['same-origin', 'cross-site'] }],
  ['cross-site with an Origin equal to the host', { 'sec-fetch-site': 'cross-site', origin: SAME_ORIGIN }],
  ['an Origin of another host, no Sec-Fetch-Site', { origin: 'https://evil.example' }],
  ['an Origin of another port, no Sec-Fetch-Site', { origin: 'http://localhost:8080' }],
  ['Origin: null', { origin: 'null' }],
  ['an unparsable Origin', { origin: 'http://exa mple' }]
]

const ALLOWED: Array<[string, Headers]> = [
  ['Sec-Fetch-Site: same-origin', { 'sec-fetch-site': 'same-origin' }],
  ['Sec-Fetch-Site: none', { 'sec-fetch-site': 'none' }],
  ['same-origin with a foreign Origin', { 'sec-fetch-site': 'same-origin', origin: 'https://evil.example' }],
  ['no Sec-Fetch-Site and no Origin', {}],
  ['empty headers', { 'sec-fetch-site': '', origin: '' }],
  ['an Origin equal to the host', { origin: SAME_ORIGIN }],
  ['an Origin equal to the host with its default port', { origin: 'http://localhost:80' }],
  ['an Origin equal to the host in another case', { origin: 'http://LOCALHOST' }]
]

t.test('unsafe methods from another origin are refused with 403, before the route and the store', async (t) => {
  const { app, reached, store, send } = await crossOriginApp(t)
  const cookie = sessionCookie(await app.inject({ method: 'POST', url: '/put' })) as string
  store.reset()
  for (const method of UNSAFE) {
    for (const [title, headers] of REFUSED) {
      const res = await send(method, { ...headers, cookie })
      t.equal(res.statusCode, 403, `${method} with ${title}`)
      t.same(res.json(), { statusCode: 403, code: 'FST_SESS_CROSS_ORIGIN', error: 'Forbidden', message: 'fastify-sessions: cross-origin request refused' })
    }
  }
  t.equal(reached.count, 0, 'no route ran')
  t.equal(store.total, 0, 'no store I/O for a refused request')
  t.equal(sessionCookie(await send('POST', { 'sec-fetch-site': 'cross-site' }, '/put')), undefined, 'no session was created')
})

t.test('unsafe methods from the same origin, and requests that are not from a browser, pass', async (t) => {
  const { reached, send } = await crossOriginApp(t)
  let expected = 0
  for (const method of UNSAFE) {
    for (const [title, headers] of ALLOWED) {
      t.equal((await send(method, headers)).statusCode, 200, `${method} with ${title}`)
      expected++
    }
  }
  t.equal(reached.count, expected)
})

t.test('safe methods pass whatever their headers say', async (t) => {
  const { send } = await crossOriginApp(t)
  for (const method of SAFE) {
    for (const [title, headers] of REFUSED) t.equal((await send(method, headers)).statusCode, 200, `${method} with ${title}`)
  }
})

t.test('a WebSocket handshake is checked like an unsafe method', async (t) => {
  const { reached, send } = await crossOriginApp(t)
  const upgrade = { connection: 'Upgrade', upgrade: 'websocket' }
  for (const [title, headers] of REFUSED) t.equal((await send('GET', { ...upgrade, ...headers })).statusCode, 403, `GET Upgrade with ${title}`)
  t.equal(reached.count, 0, 'no route ran')
  for (const [title, headers] of ALLOWED) t.equal((await send('GET', { ...upgrade, ...headers })).statusCode, 200, `GET Upgrade with ${title}`)
  t.equal(reached.count, ALLOWED.length)
})

t.test('a request without a usable Host cannot match an Origin', async (t) => {
  const { send } = await crossOriginApp(t)
  t.equal((await send('POST', { origin: 'http://a', host: 'a/b' })).statusCode, 403, 'a host with a path')
  t.equal((await send('POST', { origin: 'http://a', host: 'a:99999' })).statusCode, 403, 'a port out of range')
  t.equal((await send('POST', { origin: 'http://[::1]:3000', host: '[::1]:3000' })).statusCode, 200, 'an IPv6 host')
})

t.test('the host follows trustProxy', async (t) => {
  const forwarded = { origin: 'https://public.example', 'x-forwarded-host': 'public.example' }
  const trusting = await crossOriginApp(t, {}, { trustProxy: true })
  t.equal((await trusting.send('POST', forwarded)).statusCode, 200, 'X-Forwarded-Host counts behind a trusted proxy')
  const direct = await crossOriginApp(t)
  t.equal((await direct.send('POST', forwarded)).statusCode, 403, 'and only then')
})

t.test('a refusal is logged at debug with the reason, and the reply echoes no header', async (t) => {
  const { lines, send } = await crossOriginApp(t)
  const res = await send('POST', { origin: 'https://evil.example/<script>' })
  t.equal(res.statusCode, 403)
  t.notMatch(res.body, /evil/)
  const line = lines.find((l) => l.msg === 'fastify-sessions: request refused')
  t.match(line, { level: DEBUG, csrf: 'Origin does not match Host', origin: 'https://evil.example/<script>' })
  await send('POST', { 'sec-fetch-site': 'cross-site' })
  t.match(lines.filter((l) => l.msg === 'fastify-sessions: request refused')[1], { csrf: /Sec-Fetch-Site/, secFetchSite: 'cross-site' })
})

t.test('trusted origins are let through, and only they', async (t) => {
  const { send } = await crossOriginApp(t, { csrf: { trustedOrigins: ['https://App.Example.com:443', 'http://localhost:3000', 'chrome-extension://Abc'] } })
  t.equal((await send('POST', { 'sec-fetch-site': 'cross-site', origin: 'https://app.example.com' })).statusCode, 200, 'cross-site')
  t.equal((await send('PUT', { 'sec-fetch-site': 'same-site', origin: 'http://localhost:3000' })).statusCode, 200, 'same-site')
  t.equal((await send('POST', { origin: 'https://app.example.com' })).statusCode, 200, 'no Sec-Fetch-Site')
  t.equal((await send('POST', { 'sec-fetch-site': 'cross-site', origin: 'chrome-extension://abc' })).statusCode, 200, 'another scheme')
  t.equal((await send('POST', { 'sec-fetch-site': 'cross-site', origin: 'https://other.example.com' })).statusCode, 403, 'another origin')
  t.equal((await send('POST', { 'sec-fetch-site': 'cross-site', origin: 'http://app.example.com' })).statusCode, 403, 'another scheme of a trusted host')
  t.equal((await send('POST', { 'sec-fetch-site': 'cross-site' })).statusCode, 403, 'no Origin')
})

t.test('report-only lets refused requests through and logs each at warn', async (t) => {
  const { lines, reached, send } = await crossOriginApp(t, { csrf: { reportOnly: true } })
  t.equal((await send('DELETE', { 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' })).statusCode, 200)
  t.equal(reached.count, 1)
  t.match(lines.filter((l) => l.level === WARN), [{ msg: 'fastify-sessions: csrf.reportOnly let through a request it would refuse', origin: 'https://evil.example' }])
  t.equal((await send('POST', { 'sec-fetch-site': 'same-origin' })).statusCode, 200)
  t.equal(lines.filter((l) => l.level === WARN).length, 1, 'nothing logged for a request that passes')
  t.equal((await send('POST', { 'sec-fetch-site': 'cross-site' }, '/enforce')).statusCode, 403, 'a route can enforce')
})

t.test('per route: csrf false turns the check off, reportOnly reports, session false keeps the check', async (t) => {
  const { lines, send } = await crossOriginApp(t)
  const cross = { 'sec-fetch-site': 'cross-site' }
  t.equal((await send('POST', cross, '/hook')).body, 'hooked', 'a webhook route')
  t.equal((await send('POST', cross, '/report')).body, 'reported')
  t.equal(lines.filter((l) => l.level === WARN).length, 1)
  t.equal((await send('POST', cross, '/no-session')).statusCode, 403, 'session: false is not a CSRF opt-out')
  t.equal((await send('POST', cross, '/nowhere')).statusCode, 403, 'the whole context, unknown routes included')
})

t.test('csrf: false turns everything off', async (t) => {
  const off = await build({ csrf: false }, (app) => { app.post('/any', async () => 'ok') })
  t.teardown(() => off.close())
  const send = (headers: Headers) => off.inject({ method: 'POST', url: '/any', headers })
  t.equal((await send({ 'sec-fetch-site': 'cross-site' })).statusCode, 200)
  t.equal((await send({ origin: 'https://evil.example' })).statusCode, 200)
  const on = await crossOriginApp(t, { csrf: true })
  t.equal((await on.send('POST', { 'sec-fetch-site': 'cross-site' })).statusCode, 403, 'csrf: true is the default')
})

t.test('bad csrf options fail registration naming the option', async (t) => {
  const bad: Array<[unknown, RegExp]> = [
    ['yes', /"csrf": must be an object/],
    [{ trustedOrigin: [] }, /"csrf\.trustedOrigin": is not a known option; did you mean "trustedOrigins"/],
    [{ trustedOrigins: 'https://a.example' }, /"csrf\.trustedOrigins": must be an array/],
    [{ trustedOrigins: ['https://a.example/'] }, /"csrf\.trustedOrigins\[0\]": must be an origin/],
    [{ trustedOrigins: ['https://ok.example', 'a.example'] }, /"csrf\.trustedOrigins\[1\]"/],
    [{ trustedOrigins: ['https://a.example/path'] }, /"csrf\.trustedOrigins\[0\]"/],
    [{ trustedOrigins: ['https://a.example?x'] }, /"csrf\.trustedOrigins\[0\]"/],
    [{ trustedOrigins: ['https://user@a.example'] }, /"csrf\.trustedOrigins\[0\]"/],
    [{ trustedOrigins: ['https://a.example:99999'] }, /"csrf\.trustedOrigins\[0\]"/],
    [{ trustedOrigins: ['null'] }, /"csrf\.trustedOrigins\[0\]"/],
    [{ trustedOrigins: ['*'] }, /"csrf\.trustedOrigins\[0\]"/],
    [{ trustedOrigins: [42] }, /"csrf\.trustedOrigins\[0\]"/],
    [{ reportOnly: 'yes' }, /"csrf\.reportOnly": must be a boolean/],
    [{ token: 1 }, /"csrf\.token": must be a boolean/]
  ]
  for (const [csrf, message] of bad) {
    await t.rejects(build({ csrf: csrf as never }), { code: 'FST_SESS_INVALID_OPTION', message }, JSON.stringify(csrf))
  }
})

t.test('bad route csrf settings fail startup naming the route', async (t) => {
  const bad: Array<[unknown, RegExp, Options]> = [
    [true, /"config\.session\.csrf of POST \/bad": must be false or an object/, {}],
    ['off', /"config\.session\.csrf of POST \/bad": must be an object/, {}],
    [{ enabled: false }, /"config\.session\.csrf\.enabled of POST \/bad": is not a known route option/, {}],
    [{ token: 'yes' }, /"config\.session\.csrf\.token of POST \/bad": must be a boolean/, {}],
    [{ reportOnly: 1 }, /"config\.session\.csrf\.reportOnly of POST \/bad"/, {}],
    [{ token: true }, /"config\.session\.csrf of POST \/bad": has no effect: the plugin was registered with csrf: false/, { csrf: false }]
  ]
  for (const [csrf, message, options] of bad) {
    const routes = (app: FastifyInstance): void => { app.post('/bad', { config: { session: { csrf: csrf as never } } }, async () => 'x') }
    await t.rejects(build(options, routes), { code: 'FST_SESS_INVALID_OPTION', message }, JSON.stringify(csrf))
  }
  const off = await build({ csrf: false }, (app) => { app.post('/hook', { config: { session: { csrf: false } } }, async () => 'x') })
  t.teardown(() => off.close())
  t.equal((await off.inject({ method: 'POST', url: '/hook' })).statusCode, 200, 'csrf: false on a route is harmless')
})

/** An app whose routes hand out tokens and check them. */
async function tokenApp (t: tap.Test, options: Options = {}) {
  const app = await build(options, (app) => {
    app.get('/token', async (req) => ({ token: req.session.csrfToken(), id: req.session.id }))
    app.post('/verify', async (req) => ({ valid: req.session.verifyCsrfToken((req.body as { token?: unknown }).token) }))
    app.post('/put', async (req) => { req.session.set('user', 'ada'); return 'ok' })
    app.post('/login', async (req) => {
      const before = req.session.csrfToken()
      await req.session.regenerate()
      return { before: req.session.verifyCsrfToken(before), after: req.session.verifyCsrfToken(req.session.csrfToken()) }
    })
    app.post('/logout', async (req) => {
      const token = req.session.csrfToken()
      await req.session.destroy()
      let thrown
      try {
        req.session.csrfToken()
      } catch (err) {
        thrown = (err as { code: string }).code
      }
      return { valid: req.session.verifyCsrfToken(token), thrown }
    })
  })
  t.teardown(() => app.close())
  const token = async (cookie?: string) => {
    const res = await app.inject({ url: '/token', headers: cookie === undefined ? {} : { cookie } })
    return { ...(res.json() as { token: string, id: string }), cookie: sessionCookie(res) ?? cookie as string }
  }
  const verify = async (cookie: string | undefined, value: unknown): Promise<boolean> =>
    (await app.inject({ method: 'POST', url: '/verify', headers: cookie === undefined ? {} : { cookie }, payload: { token: value } })).json().valid
  return { app, token, verify }
}

t.test('a token verifies in its own session, on later requests, and in no other', async (t) => {
  const { token, verify } = await tokenApp(t)
  const a = await token()
  const b = await token()
  t.ok(a.cookie, 'a session that got a token is stored and its cookie sent')
  t.not(a.cookie, b.cookie)
  t.not(a.token, b.token)
  t.equal(await verify(a.cookie, a.token), true)
  t.equal(await verify(b.cookie, b.token), true)
  t.equal(await verify(a.cookie, b.token), false, "another session's token")
  t.equal(await verify(b.cookie, a.token), false)
  t.equal(await verify(undefined, a.token), false, 'no session')
  const again = await token(a.cookie)
  t.equal(again.id, a.id)
  t.not(again.token, a.token, 'every call gives a new token')
  t.equal(await verify(a.cookie, a.token), true, 'and the earlier ones stay valid')
  t.equal(await verify(a.cookie, again.token), true)
})

t.test('a token never contains the session id or its digest', async (t) => {
  const { token } = await tokenApp(t)
  for (let i = 0; i < 20; i++) {
    const { token: value, id, cookie } = await token()
    const digests = [hash('sha256', id, 'base64url'), hash('sha256', id, 'hex'), hash('sha256', id, 'base64')]
    for (const secret of [id, ...digests, cookie.slice('sid='.length)]) {
      for (const part of [secret, secret.slice(0, 8), secret.slice(-8)]) t.notOk(value.includes(part), 'no piece of the id, its digest or the cookie')
    }
  }
})

t.test('regenerate() and destroy() end the tokens of a session', async (t) => {
  const { app, token, verify } = await tokenApp(t)
  const a = await token()
  const login = await app.inject({ method: 'POST', url: '/login', headers: { cookie: a.cookie } })
  t.same(login.json(), { before: false, after: true }, 'in the request that regenerates')
  const fresh = sessionCookie(login) as string
  t.equal(await verify(fresh, a.token), false, 'on the next request')
  const b = await token(fresh)
  const logout = await app.inject({ method: 'POST', url: '/logout', headers: { cookie: fresh } })
  t.same(logout.json(), { valid: false, thrown: 'FST_SESS_DESTROYED' })
  t.equal(await verify(fresh, b.token), false, 'after destroy')
})

t.test('malformed tokens are false, never an error', async (t) => {
  const { token, verify } = await tokenApp(t)
  const { token: good, cookie } = await token()
  const flip = (s: string, i: number): string => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1)
  const bad: unknown[] = [
    undefined, null, 42, true, {}, [], [good], { token: good }, '', '.', 'a.b', good + 'x', good.slice(0, -1), ' ' + good.slice(1),
    flip(good, 0), flip(good, 30), flip(good, good.length - 1), good.replace('.', '-'), good.split('.').reverse().join('.'),
    'é'.repeat(good.length), good.slice(0, -1) + 'é', good.toUpperCase()
  ]
  for (const value of bad) t.equal(await verify(cookie, value), false, JSON.stringify(value))
  t.equal(await verify(cookie, good), true)
})

t.test('tokens made under an older secret verify after a rotation', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const before = await tokenApp(t, { secret: OLD_SECRET, store })
  const after = await tokenApp(t, { secret: [SECRET, OLD_SECRET], store })
  const old = await before.token()
  t.equal(await after.verify(old.cookie, old.token), true)
  const renewed = await after.token(old.cookie)
  t.equal(await before.verify(old.cookie, renewed.token), false, 'a token of the new secret means nothing to an app without it')
})

t.test('saveUninitialized false: a token stores the session, nothing else does', async (t) => {
  const { app, token } = await tokenApp(t)
  t.equal(sessionCookie(await app.inject({ method: 'POST', url: '/verify', payload: {} })), undefined)
  const { cookie } = await token()
  t.ok(cookie)
  const again = await app.inject({ url: '/token', headers: { cookie } })
  t.equal(sessionCookie(again), undefined, 'a stored session is not written again for a token')
})

t.test('tokens work with CookieStore', async (t) => {
  const { token, verify } = await tokenApp(t, { store: new CookieStore() })
  const a = await token()
  const b = await token()
  t.equal(await verify(a.cookie, a.token), true)
  t.equal(await verify(a.cookie, b.token), false)
})

/** An app with the automatic token check, and a `_csrf` form parser. */
async function automaticApp (t: tap.Test, options: Options = {}) {
  const { lines, logger } = logLines()
  const store = new StoreSpy()
  const ran: string[] = []
  const app = await build({ store, ...options }, (app) => {
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(body as string)))
    })
    app.get('/token', async (req) => req.session.csrfToken())
    app.post('/form', async () => 'ok')
    app.put('/form', { preValidation: async () => { ran.push('own hook') } }, async () => 'ok')
    app.route({ method: ['GET', 'DELETE'], url: '/both', preValidation: [async () => { ran.push('hook 1') }, async () => { ran.push('hook 2') }], handler: async () => 'ok' })
    app.post('/opt-in', { config: { session: { csrf: { token: true } } } }, async () => 'ok')
    app.post('/token-off', { config: { session: { csrf: { token: false } } } }, async () => 'ok')
    app.post('/report', { config: { session: { csrf: { token: true, reportOnly: true } } } }, async () => 'reported')
    app.post('/no-session', { config: { session: false } }, async () => 'ok')
  }, { logger })
  t.teardown(async () => {
    await app.close()
    await store.close()
  })
  const res = await app.inject('/token')
  const cookie = sessionCookie(res) as string
  return { app, lines, ran, store, cookie, token: res.body }
}

t.test('automatic mode: unsafe requests need the token in x-csrf-token or a _csrf field', async (t) => {
  const { app, cookie, token, ran } = await automaticApp(t, { csrf: { token: true } })
  const post = (opts: InjectOptions) => app.inject({ method: 'POST', url: '/form', ...opts, headers: { cookie, ...opts.headers } })
  const refused = await post({})
  t.equal(refused.statusCode, 403)
  t.same(refused.json(), { statusCode: 403, code: 'FST_SESS_CSRF_TOKEN', error: 'Forbidden', message: 'fastify-sessions: missing or invalid CSRF token' })
  t.equal((await post({ headers: { 'x-csrf-token': token } })).statusCode, 200, 'header')
  t.equal((await post({ payload: { _csrf: token } })).statusCode, 200, 'JSON field')
  const form = { 'content-type': 'application/x-www-form-urlencoded' }
  t.equal((await post({ headers: form, payload: `_csrf=${token}&item=tea` })).statusCode, 200, 'form field')
  t.equal((await post({ headers: form, payload: 'item=tea' })).statusCode, 403, 'a form without it')
  t.equal((await post({ headers: { 'x-csrf-token': 'nope' }, payload: { _csrf: token } })).statusCode, 403, 'the header, when present, is the token')
  t.equal((await post({ payload: { _csrf: token.slice(1) } })).statusCode, 403, 'a wrong token')
  t.equal((await post({ headers: { 'content-type': 'text/plain' }, payload: token })).statusCode, 403, 'a body that is not an object')
  t.equal((await app.inject({ method: 'POST', url: '/form', headers: { 'x-csrf-token': token } })).statusCode, 403, 'without the session')
  const other = await automaticApp(t, { csrf: { token: true } })
  t.equal((await post({ headers: { 'x-csrf-token': other.token } })).statusCode, 403, "another session's token")
  t.equal((await app.inject({ method: 'PUT', url: '/form', headers: { cookie } })).statusCode, 403)
  t.same(ran, [], 'the route hook after the check did not run')
  t.equal((await app.inject({ method: 'PUT', url: '/form', headers: { cookie, 'x-csrf-token': token } })).statusCode, 200)
  t.equal((await app.inject({ method: 'DELETE', url: '/both', headers: { cookie, 'x-csrf-token': token } })).statusCode, 200)
  t.same(ran, ['own hook', 'hook 1', 'hook 2'], "the route's own preValidation hooks still run")
  t.equal((await app.inject({ method: 'GET', url: '/both', headers: { cookie } })).statusCode, 200, 'safe methods need no token')
  t.equal((await app.inject({ method: 'POST', url: '/no-session' })).statusCode, 200, 'no session, no token to check')
  t.equal((await app.inject({ method: 'POST', url: '/token-off', headers: { cookie } })).statusCode, 200, 'a route can turn it off')
})

t.test('automatic mode per route, report-only, and the cross-origin check first', async (t) => {
  const { app, cookie, token, lines } = await automaticApp(t)
  t.equal((await app.inject({ method: 'POST', url: '/form', headers: { cookie } })).statusCode, 200, 'off by default')
  t.equal((await app.inject({ method: 'POST', url: '/opt-in', headers: { cookie } })).statusCode, 403, 'a route opts in')
  t.equal((await app.inject({ method: 'POST', url: '/opt-in', headers: { cookie, 'x-csrf-token': token } })).statusCode, 200)
  const crossSite = await app.inject({ method: 'POST', url: '/opt-in', headers: { cookie, 'x-csrf-token': token, 'sec-fetch-site': 'cross-site' } })
  t.equal(crossSite.json().code, 'FST_SESS_CROSS_ORIGIN', 'a token does not make a cross-site request acceptable')
  t.equal((await app.inject({ method: 'POST', url: '/report', headers: { cookie } })).body, 'reported')
  t.match(lines.filter((l) => l.level === WARN), [{ csrf: 'missing or invalid CSRF token' }])
})

t.test('automatic mode: a store failing at load answers 503, not 403', async (t) => {
  const { app, cookie, store } = await automaticApp(t, { csrf: { token: true } })
  store.fail('get')
  const res = await app.inject({ method: 'POST', url: '/form', headers: { cookie } })
  t.equal(res.statusCode, 503)
  t.equal(res.json().code, 'FST_SESS_STORE_UNAVAILABLE')
})

import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { EventEmitter, once } from 'node:events'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { Writable } from 'node:stream'
import { pathToFileURL } from 'node:url'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { freePort } from './helpers/free-port'
import { memcachedUnavailable, startMemcached } from './helpers/memcached-server'
import { postgresUnavailable, startPostgres } from './helpers/postgres-server'
import { redisUnavailable, startStandalone } from './helpers/redis-servers'

// The demo is plain ESM that imports the package by name (resolved to the built dist/),
// so it is loaded with a real dynamic import. A string variable keeps TypeScript from
// looking for type declarations of the .mjs file.
type Env = Record<string, string | undefined>
interface ExampleApp {
  buildApp (opts?: { secret?: string, logger?: unknown, env?: Env }): Promise<FastifyInstance>
  DEMO_SECRET: string
}

const exampleDir = resolve(__dirname, '..', 'example')
const appUrl: string = pathToFileURL(resolve(exampleDir, 'app.mjs')).href
const SECRET = 'example-test-secret-that-is-long-enough-0123456789'
const FORM = { 'content-type': 'application/x-www-form-urlencoded' }

let example: ExampleApp
t.before(async () => {
  example = (await import(appUrl)) as ExampleApp
})

/** The CSRF token of the first form on a page. */
function tokenIn (html: string): string | undefined {
  return /name="_csrf" value="([^"]+)"/.exec(html)?.[1]
}

/**
 * A browser in miniature: keeps the cookies each response sets and sends them back, and posts
 * forms with the token of the last page it loaded, as a real form would.
 */
class Browser {
  jar = new Map<string, string>()
  token: string | undefined
  last!: LightMyRequestResponse

  constructor (readonly app: FastifyInstance) {}

  async get (url: string): Promise<LightMyRequestResponse> {
    const res = await this.#send({ method: 'GET', url })
    this.token = tokenIn(res.body) ?? this.token
    return res
  }

  /** Loads the home page, to have a token, then posts the form. */
  async submit (url: string, form: Record<string, string> = {}): Promise<LightMyRequestResponse> {
    await this.get('/')
    return await this.post(url, form)
  }

  async post (url: string, form: Record<string, string> = {}, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
    const fields = this.token === undefined ? form : { _csrf: this.token, ...form }
    return await this.#send({ method: 'POST', url, headers: { ...FORM, ...headers }, payload: new URLSearchParams(fields).toString() })
  }

  /** What the page's script sends for an "Add" button. */
  async add (item: string): Promise<LightMyRequestResponse> {
    return await this.post('/cart', { item }, { accept: 'application/json', 'sec-fetch-site': 'same-origin' })
  }

  get sid (): string | undefined {
    return this.jar.get('sid')
  }

  async #send (opts: { method: 'GET' | 'POST', url: string, headers?: Record<string, string>, payload?: string }): Promise<LightMyRequestResponse> {
    const res = await this.app.inject({ ...opts, cookies: Object.fromEntries(this.jar) })
    for (const c of res.cookies as Array<{ name: string, value: string, maxAge?: number, expires?: Date }>) {
      const expired = c.maxAge === 0 || (c.expires !== undefined && c.expires.getTime() <= Date.now())
      if (expired) this.jar.delete(c.name)
      else this.jar.set(c.name, c.value)
    }
    this.last = res
    return res
  }
}

async function app (t: Test, env: Env = {}, logger: unknown = false): Promise<FastifyInstance> {
  const instance = await example.buildApp({ secret: SECRET, env, logger })
  t.teardown(() => instance.close())
  return instance
}

function loggedInAs (html: string): string | undefined {
  return /<strong class="user">([^<]*)<\/strong>/.exec(html)?.[1]
}

function cartTotal (html: string): number | undefined {
  const match = /<strong id="cart-total">(\d+)<\/strong>/.exec(html)
  return match === null ? undefined : Number(match[1])
}

function countOf (html: string, item: string): number | undefined {
  const match = new RegExp(`data-count="${item}">(\\d+)<`).exec(html)
  return match === null ? undefined : Number(match[1])
}

function flashes (html: string): string[] {
  return [...html.matchAll(/<p class="flash flash-(\w+)" role="status">([^<]*)<\/p>/g)].map((m) => `${m[1]}: ${m[2]}`)
}

function assertAnonymous (t: Test, res: LightMyRequestResponse): void {
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/html/)
  t.match(res.body, 'You are not logged in.')
  t.equal(loggedInAs(res.body), undefined, 'nobody is logged in')
  t.match(res.body, '<form method="post" action="/login">', 'the login form is shown')
}

t.test('anonymous home page: login form with a token, an empty cart, the store named', async (t) => {
  const browser = new Browser(await app(t))
  const res = await browser.get('/')
  assertAnonymous(t, res)
  t.match(res.body, 'This is a demo: any username works and the password is not checked.')
  t.match(res.body, '<strong class="store">memory</strong>')
  t.equal(cartTotal(res.body), 0)
  t.ok(browser.token, 'the login form carries a CSRF token')
  t.notMatch(res.body, browser.sid as string, 'no session id on the page')
  t.equal(res.headers['cache-control'], 'no-store', 'personal pages are never cached')
  // The login form's token is bound to a session, so the first visit stores one.
  t.ok(browser.sid, 'a cookie for the session the token belongs to')
  const first = browser.sid
  await browser.get('/')
  t.equal(browser.last.headers['set-cookie'], undefined, 'no new cookie on the next visit')
  t.equal(browser.sid, first)
})

t.test('login, flash once, cart, devices, logout with a flash once', async (t) => {
  const browser = new Browser(await app(t))
  const anonymous = (await browser.get('/'), browser.sid)

  const login = await browser.post('/login', { username: 'alice', password: 'anything' })
  t.equal(login.statusCode, 303)
  t.equal(login.headers.location, '/')
  t.equal(login.headers['cache-control'], 'no-store')
  const cookie = login.cookies.find((c) => c.name === 'sid') as { httpOnly?: boolean, sameSite?: string, path?: string } | undefined
  t.equal(cookie?.httpOnly, true)
  t.equal(cookie?.sameSite, 'Lax')
  t.equal(cookie?.path, '/')
  t.not(browser.sid, anonymous, 'login issued a new session id')
  const loggedInSid = browser.sid as string

  let home = await browser.get('/')
  t.equal(loggedInAs(home.body), 'alice')
  t.same(flashes(home.body), ['info: Welcome, alice'], 'the flash shows')
  t.match(home.body, 'Your sessions (1)')
  t.match(home.body, /<li class="device">lightMyRequest <strong>\(this browser\)<\/strong>: signed in /)
  home = await browser.get('/')
  t.same(flashes(home.body), [], 'the flash is gone on the next page')

  for (const item of ['apple', 'apple']) {
    const res = await browser.post('/cart', { item })
    t.equal(res.statusCode, 303, 'a form post redirects')
    t.equal(res.headers.location, '/')
  }
  const added = await browser.add('coffee')
  t.equal(added.statusCode, 200, 'the script gets JSON')
  t.same(added.json(), { counts: { apple: 2, bread: 0, coffee: 1, tea: 0 }, total: 3 })
  t.equal(browser.sid, loggedInSid, 'the cart does not change the session id')
  home = await browser.get('/')
  t.equal(countOf(home.body, 'apple'), 2)
  t.equal(countOf(home.body, 'coffee'), 1)
  t.equal(cartTotal(home.body), 3)

  const logout = await browser.post('/logout')
  t.equal(logout.statusCode, 303)
  t.equal(logout.headers.location, '/')
  t.ok(browser.sid, 'a new session carries the flash')
  t.not(browser.sid, loggedInSid, 'with a new id')
  home = await browser.get('/')
  assertAnonymous(t, home)
  t.same(flashes(home.body), ['info: You are logged out.'])
  t.equal(cartTotal(home.body), 0, 'the cart went with the session')
  t.same(flashes((await browser.get('/')).body), [], 'the flash shows once')

  // Someone who kept the old cookie gets nothing: the record is gone from the store.
  const replay = await browser.app.inject({ method: 'GET', url: '/', cookies: { sid: loggedInSid } })
  assertAnonymous(t, replay)
  t.equal(cartTotal(replay.body), 0)
})

t.test('login keeps the anonymous cart; the pre-login id and its tokens are dead', async (t) => {
  const browser = new Browser(await app(t))
  await browser.submit('/cart', { item: 'tea' })
  const anonymousSid = browser.sid as string
  const anonymousToken = browser.token as string
  t.equal(countOf((await browser.get('/')).body, 'tea'), 1)

  await browser.post('/login', { username: 'bob', password: '' })
  t.not(browser.sid, anonymousSid, 'login issued a new session id')
  const home = await browser.get('/')
  t.equal(loggedInAs(home.body), 'bob')
  t.equal(countOf(home.body, 'tea'), 1, 'the cart survived the login')
  t.not(browser.token, anonymousToken, 'the page has a token of the new session')

  const fixated = await browser.app.inject({ method: 'GET', url: '/', cookies: { sid: anonymousSid } })
  assertAnonymous(t, fixated)
  t.equal(cartTotal(fixated.body), 0, 'the pre-login id is dead')

  // A form rendered before the login (another tab) no longer passes.
  const stale = await browser.post('/logout', { _csrf: anonymousToken })
  t.equal(stale.statusCode, 403)
  t.match(stale.headers['content-type'], /^text\/html/)
  t.match(stale.body, 'This form has expired')
  t.equal(loggedInAs((await browser.get('/')).body), 'bob', 'still logged in')
})

t.test('the device list shows every session of the user, and log out everywhere ends them all', async (t) => {
  const instance = await app(t)
  const phone = new Browser(instance)
  const laptop = new Browser(instance)
  const other = new Browser(instance)
  await phone.submit('/login', { username: 'gina', password: 'x' })
  await laptop.submit('/login', { username: 'gina', password: 'x' })
  await other.get('/')
  await other.post('/login', { username: 'hal', password: 'x' }, { 'user-agent': '' })
  const home = await phone.get('/')
  t.match(home.body, 'Your sessions (2)')
  t.equal([...home.body.matchAll(/<li class="device">lightMyRequest/g)].length, 2, 'both, with the browser that signed in')
  t.equal([...home.body.matchAll(/\(this browser\)/g)].length, 1, 'one of them marked as this one')
  t.notMatch(home.body, phone.sid as string, 'no session id on the page')
  const others = (await other.get('/')).body
  t.match(others, 'Your sessions (1)', 'another user sees only theirs')
  t.match(others, '<li class="device">unknown browser <strong>(this browser)</strong>', 'a browser that gave no name')

  const out = await laptop.submit('/logout-everywhere')
  t.equal(out.statusCode, 303)
  const after = await laptop.get('/')
  assertAnonymous(t, after)
  t.same(flashes(after.body), ['info: You are logged out everywhere: this browser and 1 other session.'])
  assertAnonymous(t, await phone.get('/'))
  t.equal(loggedInAs((await other.get('/')).body), 'hal', 'other users stay logged in')
  await phone.submit('/login', { username: 'gina', password: 'x' })
  t.match((await phone.get('/')).body, 'Your sessions (1)', 'a new login after it works')
  await phone.submit('/login', { username: 'gina', password: 'x' })
  await phone.submit('/logout-everywhere')
  t.same(flashes((await phone.get('/')).body), ['info: You are logged out everywhere: this browser and 0 other sessions.'])

  // Anonymous, there is nobody to log out: a fresh session, and no flash.
  await phone.submit('/logout-everywhere')
  t.equal(phone.last.statusCode, 303)
  t.same(flashes((await phone.get('/')).body), [])
})

t.test('tabs adding to the cart at the same moment lose nothing', async (t) => {
  const browser = new Browser(await app(t))
  await browser.submit('/login', { username: 'ida', password: 'x' })
  await browser.get('/')
  const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => browser.add(i % 2 === 0 ? 'apple' : 'bread')))
  t.same(answers.map((res) => res.statusCode), Array(20).fill(200))
  t.same(answers.map((res) => res.json().total).sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i + 1), 'each saw its own item stored')
  const home = await browser.get('/')
  t.equal(countOf(home.body, 'apple'), 10)
  t.equal(countOf(home.body, 'bread'), 10)
})

t.test('a tampered or garbage cookie gives the anonymous page, never an error', async (t) => {
  const browser = new Browser(await app(t))
  await browser.submit('/login', { username: 'carol', password: 'x' })
  const sid = browser.sid as string
  t.equal(loggedInAs((await browser.get('/')).body), 'carol')

  const last = sid.at(-1) === 'A' ? 'B' : 'A'
  const forgedSignature = sid.slice(0, -1) + last
  const first = sid[0] === 'A' ? 'B' : 'A'
  const forgedId = first + sid.slice(1)
  for (const value of [forgedSignature, forgedId, 'garbage', sid + 'x', '']) {
    const res = await browser.app.inject({ method: 'GET', url: '/', cookies: { sid: value } })
    assertAnonymous(t, res)
    const issued = res.cookies.find((c) => c.name === 'sid')?.value ?? ''
    t.not(issued.split('.')[0], value.split('.')[0], `a new id, never the one in ${JSON.stringify(value)}`)
  }
  t.equal(loggedInAs((await browser.get('/')).body), 'carol', 'the real cookie still works')
})

t.test('/healthz opts out of sessions', async (t) => {
  const browser = new Browser(await app(t))
  let res = await browser.get('/healthz')
  t.equal(res.statusCode, 200)
  t.same(res.json(), { ok: true })
  t.equal(res.headers['set-cookie'], undefined)

  await browser.submit('/login', { username: 'dave', password: 'x' })
  res = await browser.get('/healthz')
  t.same(res.json(), { ok: true })
  t.equal(res.headers['set-cookie'], undefined, 'no Set-Cookie even with a session cookie')
  t.equal(res.headers['cache-control'], undefined, 'and no session headers at all')
  res = await browser.app.inject({ method: 'GET', url: '/healthz', cookies: { sid: 'garbage' } })
  t.same(res.json(), { ok: true })
  t.equal(res.headers['set-cookie'], undefined)
})

t.test('user-provided values are HTML-escaped', async (t) => {
  const browser = new Browser(await app(t))
  const name = '<script>alert("x")</script> & \'quote\''
  await browser.submit('/login', { username: name, password: 'x' })
  const home = await browser.get('/')
  t.equal(home.statusCode, 200)
  t.notMatch(home.body, '<script>alert', 'no raw tag reaches the page')
  t.notMatch(home.body, 'alert("x")')
  const escaped = '&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62; &#38; &#39;quote&#39;'
  t.equal(loggedInAs(home.body), escaped)
  t.match(home.body, `Welcome, ${escaped}`, 'the flash is escaped too')
})

t.test('bad form input is refused with a flash, not an error', async (t) => {
  const browser = new Browser(await app(t))

  for (const form of [{ username: '   ', password: 'x' }, { username: 'erin' }, { password: 'x' }, { username: 'x'.repeat(65), password: 'x' }] as Array<Record<string, string>>) {
    const res = await browser.submit('/login', form)
    t.equal(res.statusCode, 303)
    const home = await browser.get('/')
    assertAnonymous(t, home)
    t.match(flashes(home.body).join(), /^error: Enter a username/, `refused ${JSON.stringify(form)}`)
  }

  for (const item of ['caviar', '__proto__']) {
    await browser.post('/cart', { item })
    const home = await browser.get('/')
    t.same(flashes(home.body), ['error: Unknown item.'], item)
    t.equal(cartTotal(home.body), 0)
  }
  const json = await browser.add('caviar')
  t.equal(json.statusCode, 400, 'the script is told in JSON')
  t.same(json.json(), { message: 'Unknown item.' })

  const token = browser.token as string
  // The token in the header, as a script sends it, and no body at all: no fields, refused.
  const empty = await browser.app.inject({ method: 'POST', url: '/login', headers: { 'x-csrf-token': token }, cookies: Object.fromEntries(browser.jar) })
  t.equal(empty.statusCode, 303)
  t.match(flashes((await browser.get('/')).body).join(), /^error: Enter a username/)

  const jsonLogin = await browser.app.inject({ method: 'POST', url: '/login', payload: { username: 'frank', password: 'x', _csrf: token }, cookies: Object.fromEntries(browser.jar) })
  t.equal(jsonLogin.statusCode, 303, 'a JSON body works as well')

  // Fastify parses text/plain into a string: it carries no token, so it is refused.
  const text = await browser.app.inject({
    method: 'POST', url: '/login', headers: { 'content-type': 'text/plain' }, payload: `username=x&password=x&_csrf=${token}`, cookies: Object.fromEntries(browser.jar)
  })
  t.equal(text.statusCode, 403)
  assertAnonymous(t, await browser.get('/'))
})

t.test('forms are protected from forgery: another site, or no valid token, is refused', async (t) => {
  const browser = new Browser(await app(t))
  await browser.submit('/login', { username: 'grace', password: 'x' })
  await browser.get('/')
  const forged = async (headers: Record<string, string>, form: Record<string, string> = {}): Promise<LightMyRequestResponse> =>
    await browser.post('/logout', form, headers)
  const foreign: Array<Record<string, string>> = [{ 'sec-fetch-site': 'cross-site' }, { 'sec-fetch-site': 'same-site' }, { origin: 'https://evil.example' }]
  for (const headers of foreign) {
    const res = await forged(headers)
    t.equal(res.statusCode, 403, JSON.stringify(headers))
    t.equal(res.json().code, 'FST_SESS_CROSS_ORIGIN', 'refused before the token is even looked at')
  }
  // A browser too old to send Sec-Fetch-Site or Origin is still covered by the token.
  for (const form of [{ _csrf: '' }, { _csrf: 'forged.token' }]) {
    const res = await forged({}, form)
    t.equal(res.statusCode, 403, `token ${JSON.stringify(form._csrf)}`)
    t.match(res.body, 'This form has expired')
  }
  const fetched = await browser.app.inject({ method: 'POST', url: '/cart', headers: { ...FORM, accept: 'application/json' }, payload: 'item=tea', cookies: Object.fromEntries(browser.jar) })
  t.equal(fetched.statusCode, 403)
  t.same(fetched.json(), { code: 'FST_SESS_CSRF_TOKEN', message: 'This page has expired: reload it.' }, 'the script is told in JSON')
  const home = await browser.get('/')
  t.equal(loggedInAs(home.body), 'grace', 'still logged in')
  t.equal(cartTotal(home.body), 0)
  t.equal((await forged({ 'sec-fetch-site': 'same-origin', origin: 'http://localhost' })).statusCode, 303, 'the same form from the site itself works')
})

t.test('the cart is capped', async (t) => {
  const browser = new Browser(await app(t))
  await browser.get('/')
  for (let i = 0; i < 50; i++) await browser.post('/cart', { item: 'bread' })
  let home = await browser.get('/')
  t.equal(countOf(home.body, 'bread'), 50)
  t.same(flashes(home.body), [])
  await browser.post('/cart', { item: 'bread' })
  home = await browser.get('/')
  t.equal(countOf(home.body, 'bread'), 50)
  t.same(flashes(home.body), ['error: The cart holds at most 50 items.'])
  const json = await browser.add('tea')
  t.equal(json.statusCode, 200)
  t.same(json.json(), { counts: { apple: 0, bread: 50, coffee: 0, tea: 0 }, total: 50, message: 'The cart holds at most 50 items.' })
})

t.test('secret: SESSION_SECRET, else the demo secret with a warning', async (t) => {
  const saved = process.env.SESSION_SECRET
  t.teardown(() => {
    if (saved === undefined) delete process.env.SESSION_SECRET
    else process.env.SESSION_SECRET = saved
  })

  async function logsOf (opts: { secret?: string }): Promise<Array<{ level: number, msg: string }>> {
    const lines: Array<{ level: number, msg: string }> = []
    const stream = new Writable({
      write (chunk: Buffer, _enc, cb) {
        lines.push(JSON.parse(chunk.toString()) as { level: number, msg: string })
        cb()
      }
    })
    const instance = await example.buildApp({ ...opts, env: {}, logger: { level: 'warn', stream } })
    await instance.close()
    return lines
  }

  delete process.env.SESSION_SECRET
  const demo = await logsOf({})
  t.equal(demo.length, 1)
  t.equal(demo[0]?.level, 40, 'a warning')
  t.match(demo[0]?.msg, /SESSION_SECRET is not set.*production/)
  t.ok(example.DEMO_SECRET.length >= 32, 'the demo secret is long enough for the plugin')

  process.env.SESSION_SECRET = SECRET
  t.same(await logsOf({}), [], 'no warning with SESSION_SECRET set')
  t.same(await logsOf({ secret: SECRET }), [], 'nor with an explicit secret')

  process.env.SESSION_SECRET = 'too-short'
  await t.rejects(example.buildApp({ env: {} }), { code: 'FST_SESS_INVALID_OPTION', message: /secret/ }, 'a short secret fails startup')
})

t.test('SESSION_STORE: memory when unset or empty; an unknown name fails, naming the variable', async (t) => {
  for (const env of [{}, { SESSION_STORE: '' }, { SESSION_STORE: 'memory' }]) {
    const home = await new Browser(await app(t, env)).get('/')
    t.match(home.body, '<strong class="store">memory</strong>', JSON.stringify(env))
  }
  // Without their variable, the stores use their defaults; nothing connects before a request.
  for (const env of [{ SESSION_STORE: 'memcached' }, { SESSION_STORE: 'file', SESSION_DIR: '' }, { SESSION_STORE: 'postgres', DATABASE_URL: '' }]) {
    const home = await (await example.buildApp({ secret: SECRET, env })).close()
    t.equal(home, undefined, `built and closed: ${JSON.stringify(env)}`)
  }
  for (const name of ['mongo', 'Redis', '__proto__', 'toString']) {
    await t.rejects(example.buildApp({ secret: SECRET, env: { SESSION_STORE: name } }),
      { message: `SESSION_STORE must be one of memory, redis, postgres, memcached, file; got ${JSON.stringify(name)}` })
  }
})

// The core of the demo on each server-side store: SESSION_STORE and the store's variable are
// all it takes. FileStore and MemcachedStore keep no per-user index: the device list says so,
// and log out everywhere works by a stamp, without a count.
async function coreFlow (t: Test, env: Env, listsUsers: boolean, logger?: unknown): Promise<FastifyInstance> {
  const instance = await app(t, env, logger)
  const phone = new Browser(instance)
  const laptop = new Browser(instance)
  await phone.submit('/login', { username: 'ann', password: 'x' })
  await laptop.submit('/login', { username: 'ann', password: 'x' })
  let home = await phone.get('/')
  t.equal(loggedInAs(home.body), 'ann')
  t.match(home.body, `<strong class="store">${env.SESSION_STORE as string}</strong>`)

  const answers = await Promise.all(Array.from({ length: 10 }, () => phone.add('apple')))
  t.same(answers.map((res) => res.statusCode), Array(10).fill(200), 'parallel adds all succeed')
  home = await phone.get('/')
  t.equal(countOf(home.body, 'apple'), 10, 'and all are kept')

  if (listsUsers) {
    t.match(home.body, 'Your sessions (2)')
    t.equal([...home.body.matchAll(/\(this browser\)/g)].length, 1)
  } else {
    t.match(home.body, 'This store keeps no per-user index, so it cannot list your sessions.')
  }

  t.equal((await laptop.submit('/logout-everywhere')).statusCode, 303)
  const after = await laptop.get('/')
  assertAnonymous(t, after)
  t.same(flashes(after.body), [listsUsers
    ? 'info: You are logged out everywhere: this browser and 1 other session.'
    : 'info: You are logged out everywhere.'])
  t.same(flashes((await laptop.get('/')).body), [], 'the flash shows once')
  home = await phone.get('/')
  assertAnonymous(t, home)
  t.equal(cartTotal(home.body), 0, 'the other device is logged out, its cart gone with its session')
  return instance
}

/** Warnings the app logs, and a wait for the first one that matches. */
function warnings (): { logger: unknown, logged: (pattern: RegExp) => Promise<void> } {
  const seen = new EventEmitter()
  const lines: string[] = []
  const stream = new Writable({
    write (chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString())
      seen.emit('line')
      cb()
    }
  })
  const logged = async (pattern: RegExp): Promise<void> => {
    while (!lines.some((line) => pattern.test(line))) await once(seen, 'line')
  }
  return { logger: { level: 'warn', stream }, logged }
}

// The store's server goes away: pages that need the session answer 503 (the plugin's failure
// model), the health check does not touch it, and the client's complaint reaches the log.
async function outage (t: Test, instance: FastifyInstance, stop: () => Promise<void>, logged: Promise<void>): Promise<void> {
  const browser = new Browser(instance)
  await browser.get('/')
  t.ok(browser.sid, 'a session before the outage')
  await stop()
  const res = await browser.get('/')
  t.equal(res.statusCode, 503)
  t.equal(res.json().code, 'FST_SESS_STORE_UNAVAILABLE')
  t.same((await browser.get('/healthz')).json(), { ok: true }, 'the health check still answers')
  await logged
}

t.test('the demo on RedisStore', async (t) => {
  if (redisUnavailable(t)) return
  const redis = await startStandalone()
  t.teardown(() => redis.stop())
  const { logger, logged } = warnings()
  const instance = await coreFlow(t, { SESSION_STORE: 'redis', REDIS_URL: `redis://127.0.0.1:${redis.port}` }, true, logger)
  await outage(t, instance, () => redis.server.kill('SIGKILL'), logged(/redis client error/))
})

t.test('the demo on PostgresStore (the table created at start)', async (t) => {
  if (postgresUnavailable(t)) return
  const server = await startPostgres()
  t.teardown(() => server.stop())
  await coreFlow(t, { SESSION_STORE: 'postgres', DATABASE_URL: `postgres://postgres@127.0.0.1:${server.port}/postgres` }, true)
})

t.test('the demo on MemcachedStore', async (t) => {
  if (memcachedUnavailable(t)) return
  const server = await startMemcached()
  t.teardown(() => server.stop())
  const { logger, logged } = warnings()
  const instance = await coreFlow(t, { SESSION_STORE: 'memcached', MEMCACHED_SERVERS: server.address }, false, logger)
  await outage(t, instance, () => server.signal('SIGKILL'), logged(/MemJS/))
})

t.test('the demo on FileStore', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'fastify-sessions-demo-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await coreFlow(t, { SESSION_STORE: 'file', SESSION_DIR: join(dir, 'sessions') }, false)
  t.ok((await readdir(dir, { recursive: true })).some((name) => name.endsWith('.json')), 'the sessions are files in SESSION_DIR')
})

// Startup and shutdown of a real process: bounded, never asserted as a timing.
const PROCESS_DEADLINE_MS = 15_000

interface Started {
  output: () => string
  /** The exit code, once the process ended and its output is all read. */
  exit: Promise<number | null>
  /** Resolves once the output holds `text`; rejects if the process ends first or the deadline passes. */
  printed: (text: string) => Promise<void>
  stop: () => Promise<number | null>
}

function start (env: Env): Started {
  const merged: Env = { ...process.env, LOG_LEVEL: undefined, SESSION_SECRET: undefined, SESSION_STORE: undefined, ...env }
  const child = spawn(process.execPath, [resolve(exampleDir, 'server.mjs')], {
    env: merged as NodeJS.ProcessEnv,
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const output = new EventEmitter()
  let text = ''
  const collect = (chunk: Buffer): void => {
    text += chunk.toString()
    output.emit('data')
  }
  child.stdout.on('data', collect)
  child.stderr.on('data', collect)
  // 'close' rather than 'exit': it comes after the last of the output.
  const exit = once(child, 'close').then(([code]) => code as number | null)
  const printed = (wanted: string): Promise<void> => new Promise((resolve, reject) => {
    const check = (): void => { if (text.includes(wanted)) finish() }
    const timer = setTimeout(() => finish(new Error(`timed out waiting for ${JSON.stringify(wanted)}; output:\n${text}`)), PROCESS_DEADLINE_MS)
    const finish = (err?: Error): void => {
      clearTimeout(timer)
      output.off('data', check)
      if (err === undefined) resolve()
      else reject(err)
    }
    output.on('data', check)
    const ended = (): void => finish(text.includes(wanted) ? undefined : new Error(`server exited before ${JSON.stringify(wanted)}; output:\n${text}`))
    exit.then(ended, ended)
    check()
  })
  return {
    output: () => text,
    exit,
    printed,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      return await exit
    }
  }
}

t.test('example/server.mjs serves the flow over real HTTP, on the store SESSION_STORE names', async (t) => {
  const port = await freePort()
  const dir = await mkdtemp(join(tmpdir(), 'fastify-sessions-demo-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const server = start({ PORT: String(port), HOST: '127.0.0.1', SESSION_STORE: 'file', SESSION_DIR: dir })
  t.teardown(() => server.stop())
  await server.printed(`Server listening at http://127.0.0.1:${port}`)
  t.match(server.output(), /"level":40.*SESSION_SECRET is not set/, 'warns about the demo secret')
  t.match(server.output(), /"store":"file".*"msg":"session store"/, 'logs which store it uses')

  const base = `http://127.0.0.1:${port}`
  const health = await fetch(`${base}/healthz`)
  t.same(await health.json(), { ok: true })
  t.equal(health.headers.get('set-cookie'), null)

  const first = await fetch(base)
  const anonymous = (first.headers.get('set-cookie') ?? '').split(';')[0] as string
  const token = tokenIn(await first.text()) as string
  const login = await fetch(`${base}/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { ...FORM, cookie: anonymous },
    body: new URLSearchParams({ username: 'grace', password: 'x', _csrf: token })
  })
  t.equal(login.status, 303)
  const setCookie = login.headers.get('set-cookie') ?? ''
  t.match(setCookie, /^sid=[^;]+;.*HttpOnly/)
  const cookie = setCookie.split(';')[0] as string

  const home = await (await fetch(base, { headers: { cookie } })).text()
  t.match(home, 'Logged in as <strong class="user">grace</strong>')
  t.match(home, 'Welcome, grace')
  const added = await fetch(`${base}/cart`, {
    method: 'POST',
    headers: { ...FORM, cookie, accept: 'application/json' },
    body: new URLSearchParams({ item: 'coffee', _csrf: tokenIn(home) as string })
  })
  t.same(await added.json(), { counts: { apple: 0, bread: 0, coffee: 1, tea: 0 }, total: 1 })
  t.ok((await readdir(dir, { recursive: true })).some((name) => name.endsWith('.json')), 'sessions are files in SESSION_DIR')

  t.equal(await server.stop(), 0, 'SIGTERM closes the server cleanly')
  t.match(server.output(), '"msg":"shutting down"')
})

t.test('example/server.mjs: SESSION_SECRET silences the warning; a bad PORT, a busy one or a bad SESSION_STORE fails fast', async (t) => {
  const taken = createServer().listen(0, '127.0.0.1')
  await once(taken, 'listening')
  t.teardown(() => taken.close())
  // Four processes at once: none depends on another.
  const port = await freePort()
  const server = start({ PORT: String(port), SESSION_SECRET: SECRET, LOG_LEVEL: 'info' })
  t.teardown(() => server.stop())
  const busy = start({ PORT: String((taken.address() as { port: number }).port) })
  const bad = start({ PORT: 'not-a-port' })
  const unknown = start({ SESSION_STORE: 'mysql' })

  await server.printed(`Server listening at http://127.0.0.1:${port}`)
  t.ok((await fetch(`http://127.0.0.1:${port}/healthz`)).ok, 'listening on PORT, default host 127.0.0.1')
  t.match(server.output(), /"store":"memory".*"msg":"session store"/, 'the memory store by default')
  t.equal(await server.stop(), 0)
  t.notMatch(server.output(), 'SESSION_SECRET is not set')

  t.equal(await busy.exit, 1, 'a port in use ends the process with an error')
  t.match(busy.output(), 'could not start the server')

  t.equal(await bad.exit, 1)
  t.match(bad.output(), 'PORT must be an integer')

  t.equal(await unknown.exit, 1)
  t.match(unknown.output(), 'could not start the demo: SESSION_STORE must be one of memory, redis, postgres, memcached, file; got "mysql"')
})

import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { EventEmitter, once } from 'node:events'
import { createServer } from 'node:net'
import { resolve } from 'node:path'
import { Writable } from 'node:stream'
import { pathToFileURL } from 'node:url'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { freePort } from './helpers/free-port'

// The demo is plain ESM that imports the package by name (resolved to the built dist/),
// so it is loaded with a real dynamic import. A string variable keeps TypeScript from
// looking for type declarations of the .mjs file.
interface ExampleApp {
  buildApp (opts?: { secret?: string, logger?: unknown }): Promise<FastifyInstance>
  DEMO_SECRET: string
}

const exampleDir = resolve(__dirname, '..', 'example')
const appUrl: string = pathToFileURL(resolve(exampleDir, 'app.mjs')).href
const SECRET = 'example-test-secret-that-is-long-enough-0123456789'

let example: ExampleApp
t.before(async () => {
  example = (await import(appUrl)) as ExampleApp
})

/** A browser in miniature: keeps the cookies each response sets and sends them back. */
class Browser {
  jar = new Map<string, string>()
  last!: LightMyRequestResponse

  constructor (readonly app: FastifyInstance) {}

  async get (url: string): Promise<LightMyRequestResponse> {
    return this.#send({ method: 'GET', url })
  }

  async post (url: string, form: Record<string, string> = {}): Promise<LightMyRequestResponse> {
    return this.#send({
      method: 'POST',
      url,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams(form).toString()
    })
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

async function app (t: Test): Promise<FastifyInstance> {
  const instance = await example.buildApp({ secret: SECRET })
  t.teardown(() => instance.close())
  return instance
}

function visits (html: string): number | undefined {
  const match = /Visits in this session: <strong>(\d+)<\/strong>/.exec(html)
  return match === null ? undefined : Number(match[1])
}

function loggedInAs (html: string): string | undefined {
  return /<strong class="user">([^<]*)<\/strong>/.exec(html)?.[1]
}

function assertAnonymous (t: Test, res: LightMyRequestResponse): void {
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/html/)
  t.match(res.body, 'You are not logged in.')
  t.equal(loggedInAs(res.body), undefined, 'nobody is logged in')
  t.match(res.body, '<form method="post" action="/login">', 'the login form is shown')
}

t.test('anonymous home page: login form, demo note, and no cookie', async (t) => {
  const browser = new Browser(await app(t))
  const res = await browser.get('/')
  assertAnonymous(t, res)
  t.match(res.body, 'This is a demo: any username works and the password is not checked.')
  t.match(res.body, 'Your cart is empty.')
  t.equal(visits(res.body), undefined, 'no visit counter without a session')
  t.equal(res.headers['set-cookie'], undefined, 'a read-only anonymous visit sends no cookie')
  t.equal(res.headers['cache-control'], 'no-store', 'personal pages are never cached')
  await browser.get('/')
  t.equal(browser.last.headers['set-cookie'], undefined, 'still no cookie on a second visit')
})

t.test('login, flash once, visit counter, cart, logout', async (t) => {
  const browser = new Browser(await app(t))

  const login = await browser.post('/login', { username: 'alice', password: 'anything' })
  t.equal(login.statusCode, 303)
  t.equal(login.headers.location, '/')
  t.equal(login.headers['cache-control'], 'no-store')
  const cookie = login.cookies.find((c) => c.name === 'sid') as { httpOnly?: boolean, sameSite?: string, path?: string } | undefined
  t.ok(cookie, 'login sets the session cookie')
  t.equal(cookie?.httpOnly, true)
  t.equal(cookie?.sameSite, 'Lax')
  t.equal(cookie?.path, '/')
  const loggedInSid = browser.sid as string

  let home = await browser.get('/')
  t.equal(home.statusCode, 200)
  t.equal(loggedInAs(home.body), 'alice')
  t.match(home.body, '<p class="flash flash-info" role="status">Welcome, alice</p>', 'the flash shows')
  t.equal(visits(home.body), 1)
  t.equal(home.headers['set-cookie'], undefined, 'the id did not change: no new cookie')

  home = await browser.get('/')
  t.notMatch(home.body, 'Welcome, alice', 'the flash is gone on the next page')
  t.equal(loggedInAs(home.body), 'alice')
  t.equal(visits(home.body), 2, 'the visit counter increments')
  home = await browser.get('/')
  t.equal(visits(home.body), 3)

  for (const item of ['apple', 'apple', 'coffee']) {
    const res = await browser.post('/cart', { item })
    t.equal(res.statusCode, 303)
    t.equal(res.headers.location, '/')
  }
  t.equal(browser.sid, loggedInSid, 'the cart does not change the session id')
  home = await browser.get('/')
  t.match(home.body, '<li>Apple × 2</li>', 'in-place push()es were saved')
  t.match(home.body, '<li>Coffee × 1</li>')
  t.notMatch(home.body, 'Your cart is empty.')
  t.equal(visits(home.body), 4)

  const logout = await browser.post('/logout')
  t.equal(logout.statusCode, 303)
  t.equal(logout.headers.location, '/')
  const cleared = logout.cookies.find((c) => c.name === 'sid') as { value: string, maxAge?: number, expires?: Date } | undefined
  t.ok(cleared, 'logout sends a Set-Cookie for sid')
  t.equal(cleared?.value, '')
  t.ok(cleared?.maxAge === 0 || (cleared?.expires?.getTime() ?? Infinity) <= Date.now(), 'the cookie is expired')
  t.equal(browser.sid, undefined, 'the browser dropped the cookie')

  home = await browser.get('/')
  assertAnonymous(t, home)
  t.match(home.body, 'Your cart is empty.')

  // Someone who kept the old cookie gets nothing: the record is gone from the store.
  const replay = await browser.app.inject({ method: 'GET', url: '/', cookies: { sid: loggedInSid } })
  assertAnonymous(t, replay)
  t.match(replay.body, 'Your cart is empty.')
  t.equal(visits(replay.body), undefined)
})

t.test('login regenerates the id and keeps the anonymous cart', async (t) => {
  const browser = new Browser(await app(t))
  await browser.post('/cart', { item: 'tea' })
  t.equal(browser.last.statusCode, 303)
  const anonymousSid = browser.sid
  t.ok(anonymousSid, 'a first cart item starts a session')
  t.equal(visits((await browser.get('/')).body), 1, 'visits count once a session exists')

  await browser.post('/login', { username: 'bob', password: '' })
  t.ok(browser.sid, 'a cookie after login')
  t.not(browser.sid, anonymousSid, 'login issued a new session id')
  const home = await browser.get('/')
  t.equal(loggedInAs(home.body), 'bob')
  t.match(home.body, '<li>Tea × 1</li>', 'the cart survived the login')
  t.equal(visits(home.body), 2, 'so did the visit count')

  const fixated = await browser.app.inject({ method: 'GET', url: '/', cookies: { sid: anonymousSid as string } })
  assertAnonymous(t, fixated)
  t.match(fixated.body, 'Your cart is empty.', 'the pre-login id is dead')
})

t.test('the device list shows every session of the user, and log out everywhere ends them all', async (t) => {
  const instance = await app(t)
  const phone = new Browser(instance)
  const laptop = new Browser(instance)
  const other = new Browser(instance)
  await phone.post('/login', { username: 'gina', password: 'x' })
  await laptop.post('/login', { username: 'gina', password: 'x' })
  await other.post('/login', { username: 'hal', password: 'x' })
  const home = await phone.get('/')
  t.match(home.body, 'Your sessions (2)')
  t.equal([...home.body.matchAll(/<li class="device">lightMyRequest: signed in /g)].length, 2, 'both, with the browser that signed in')
  t.notMatch(home.body, phone.sid as string, 'no session id on the page')
  t.match((await other.get('/')).body, 'Your sessions (1)', 'another user sees only theirs')

  const out = await laptop.post('/logout-everywhere')
  t.equal(out.statusCode, 303)
  assertAnonymous(t, await phone.get('/'))
  assertAnonymous(t, await laptop.get('/'))
  t.equal(loggedInAs((await other.get('/')).body), 'hal', 'other users stay logged in')
  await phone.post('/login', { username: 'gina', password: 'x' })
  t.match((await phone.get('/')).body, 'Your sessions (1)', 'a new login after it works')
})

t.test('a tampered or garbage cookie gives the anonymous page, never an error', async (t) => {
  const browser = new Browser(await app(t))
  await browser.post('/login', { username: 'carol', password: 'x' })
  const sid = browser.sid as string
  t.equal(loggedInAs((await browser.get('/')).body), 'carol')

  const last = sid.at(-1) === 'A' ? 'B' : 'A'
  const forgedSignature = sid.slice(0, -1) + last
  const first = sid[0] === 'A' ? 'B' : 'A'
  const forgedId = first + sid.slice(1)
  for (const value of [forgedSignature, forgedId, 'garbage', sid + 'x', '']) {
    const res = await browser.app.inject({ method: 'GET', url: '/', cookies: { sid: value } })
    assertAnonymous(t, res)
    t.equal(res.headers['set-cookie'], undefined, `no cookie for ${JSON.stringify(value)}`)
  }
  t.equal(loggedInAs((await browser.get('/')).body), 'carol', 'the real cookie still works')
})

t.test('/healthz opts out of sessions', async (t) => {
  const browser = new Browser(await app(t))
  let res = await browser.get('/healthz')
  t.equal(res.statusCode, 200)
  t.same(res.json(), { ok: true })
  t.equal(res.headers['set-cookie'], undefined)

  await browser.post('/login', { username: 'dave', password: 'x' })
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
  await browser.post('/login', { username: name, password: 'x' })
  const home = await browser.get('/')
  t.equal(home.statusCode, 200)
  t.notMatch(home.body, '<script>', 'no raw tag reaches the page')
  t.notMatch(home.body, 'alert("x")')
  const escaped = '&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62; &#38; &#39;quote&#39;'
  t.equal(loggedInAs(home.body), escaped)
  t.match(home.body, `Welcome, ${escaped}`, 'the flash is escaped too')
})

t.test('bad form input is refused with a flash, not an error', async (t) => {
  const browser = new Browser(await app(t))

  for (const form of [{ username: '   ', password: 'x' }, { username: 'erin' }, { username: 'x'.repeat(65), password: 'x' }] as Array<Record<string, string>>) {
    const res = await browser.post('/login', form)
    t.equal(res.statusCode, 303)
    const home = await browser.get('/')
    assertAnonymous(t, home)
    t.match(home.body, 'flash-error', `refused ${JSON.stringify(form)}`)
  }

  await browser.post('/cart', { item: 'caviar' })
  let home = await browser.get('/')
  t.match(home.body, 'Unknown item.')
  await browser.post('/cart', { item: '__proto__' })
  home = await browser.get('/')
  t.match(home.body, 'Unknown item.')
  t.match(home.body, 'Your cart is empty.')

  const json = await browser.app.inject({ method: 'POST', url: '/login', payload: { username: 'frank', password: 'x' } })
  t.equal(json.statusCode, 303, 'a JSON body works as well')

  // Fastify parses text/plain into a string: it carries no fields, so it is refused like an empty form.
  const text = await browser.app.inject({
    method: 'POST', url: '/login', headers: { 'content-type': 'text/plain' }, payload: 'username=x&password=x', cookies: Object.fromEntries(browser.jar)
  })
  t.equal(text.statusCode, 303)
  home = await browser.get('/')
  assertAnonymous(t, home)
  t.match(home.body, 'flash-error', 'a text body logs nobody in')
})

t.test('a form posted from another site is refused, and the user stays logged in', async (t) => {
  const browser = new Browser(await app(t))
  await browser.post('/login', { username: 'grace', password: 'x' })
  const forged = (headers: Record<string, string>) => browser.app.inject({
    method: 'POST',
    url: '/logout',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    cookies: Object.fromEntries(browser.jar)
  })
  const foreign: Array<Record<string, string>> = [{ 'sec-fetch-site': 'cross-site' }, { 'sec-fetch-site': 'same-site' }, { origin: 'https://evil.example' }]
  for (const headers of foreign) {
    const res = await forged(headers)
    t.equal(res.statusCode, 403, JSON.stringify(headers))
    t.equal(res.json().code, 'FST_SESS_CROSS_ORIGIN')
  }
  t.equal(loggedInAs((await browser.get('/')).body), 'grace', 'still logged in')
  t.equal((await forged({ 'sec-fetch-site': 'same-origin', origin: 'http://localhost' })).statusCode, 303, 'the same form from the site itself works')
})

t.test('the cart is capped', async (t) => {
  const browser = new Browser(await app(t))
  for (let i = 0; i < 51; i++) await browser.post('/cart', { item: 'bread' })
  const home = await browser.get('/')
  t.match(home.body, '<li>Bread × 50</li>')
  t.match(home.body, 'The cart holds at most 50 items.')
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
    const instance = await example.buildApp({ ...opts, logger: { level: 'warn', stream } })
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
  await t.rejects(example.buildApp(), { code: 'FST_SESS_INVALID_OPTION', message: /secret/ }, 'a short secret fails startup')
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

function start (env: Record<string, string | undefined>): Started {
  const merged: Record<string, string | undefined> = { ...process.env, LOG_LEVEL: undefined, SESSION_SECRET: undefined, ...env }
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
      return exit
    }
  }
}

t.test('example/server.mjs serves the flow over real HTTP', async (t) => {
  const port = await freePort()
  const server = start({ PORT: String(port), HOST: '127.0.0.1' })
  t.teardown(() => server.stop())
  await server.printed(`Server listening at http://127.0.0.1:${port}`)
  t.match(server.output(), /"level":40.*SESSION_SECRET is not set/, 'warns about the demo secret')

  const base = `http://127.0.0.1:${port}`
  const health = await fetch(`${base}/healthz`)
  t.same(await health.json(), { ok: true })
  t.equal(health.headers.get('set-cookie'), null)

  const login = await fetch(`${base}/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username: 'grace', password: 'x' })
  })
  t.equal(login.status, 303)
  const setCookie = login.headers.get('set-cookie') ?? ''
  t.match(setCookie, /^sid=[^;]+;.*HttpOnly/)
  const cookie = setCookie.split(';')[0] as string

  await fetch(`${base}/cart`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
    body: 'item=coffee'
  })
  const home = await (await fetch(base, { headers: { cookie } })).text()
  t.match(home, 'Logged in as <strong class="user">grace</strong>')
  t.match(home, 'Welcome, grace')
  t.match(home, '<li>Coffee × 1</li>')

  t.equal(await server.stop(), 0, 'SIGTERM closes the server cleanly')
  t.match(server.output(), '"msg":"shutting down"')
})

t.test('example/server.mjs: SESSION_SECRET silences the warning; a bad or busy PORT fails fast', async (t) => {
  const taken = createServer().listen(0, '127.0.0.1')
  await once(taken, 'listening')
  t.teardown(() => taken.close())
  // Three processes at once: none depends on another.
  const port = await freePort()
  const server = start({ PORT: String(port), SESSION_SECRET: SECRET, LOG_LEVEL: 'info' })
  t.teardown(() => server.stop())
  const busy = start({ PORT: String((taken.address() as { port: number }).port) })
  const bad = start({ PORT: 'not-a-port' })

  await server.printed(`Server listening at http://127.0.0.1:${port}`)
  t.ok((await fetch(`http://127.0.0.1:${port}/healthz`)).ok, 'listening on PORT, default host 127.0.0.1')
  t.equal(await server.stop(), 0)
  t.notMatch(server.output(), 'SESSION_SECRET is not set')

  t.equal(await busy.exit, 1, 'a port in use ends the process with an error')
  t.match(busy.output(), 'could not start the server')

  t.equal(await bad.exit, 1)
  t.match(bad.output(), 'PORT must be an integer')
})

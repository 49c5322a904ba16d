import t from 'tap'
import fastifyCsrfProtection from '@fastify/csrf-protection'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { build, sessionCookie } from '../helpers/app'

// @fastify/csrf-protection beside fastify-sessions, in the two modes that can work: its
// '@fastify/secure-session' mode keeps its secret in the session through get/set and hands
// generateCsrf()'s options (userInfo included) to session.options(); its '@fastify/cookie'
// mode keeps the secret in a cookie of its own. Its '@fastify/session' mode assigns session
// properties (request.session[key] = secret), which this session object does not store.

type Mode = '@fastify/secure-session' | '@fastify/cookie'

async function csrfApp (t: tap.Test, sessionPlugin: Mode): Promise<FastifyInstance> {
  const app = await build({}, (app) => {
    app.register(async (app) => {
      await app.register(fastifyCsrfProtection, {
        sessionPlugin,
        ...(sessionPlugin === '@fastify/secure-session' ? { getUserInfo: (req) => String(req.session.get('user')) } : {})
      })
      app.post('/login', async (req) => { req.session.set('user', 'ada'); return 'ok' })
      app.get('/form', async (req, reply) => {
        // userInfo binds the token to the user; maxAge reaches the session cookie.
        const options = sessionPlugin === '@fastify/secure-session' ? { userInfo: String(req.session.get('user')), maxAge: 3600 } : {}
        return { token: reply.generateCsrf(options) }
      })
      app.post('/transfer', { onRequest: app.csrfProtection }, async () => 'done')
    })
  })
  t.teardown(() => app.close())
  return app
}

/** Every `name=value` the response set, joined as a Cookie header, with `previous` kept. */
function cookies (res: LightMyRequestResponse, previous = ''): string {
  const jar = new Map(previous === '' ? [] : previous.split('; ').map((c) => c.split('=', 2) as [string, string]))
  const header = res.headers['set-cookie']
  for (const line of header === undefined ? [] : Array.isArray(header) ? header : [header]) {
    const [pair] = line.split(';')
    const at = pair.indexOf('=')
    jar.set(pair.slice(0, at), pair.slice(at + 1))
  }
  return [...jar].map(([name, value]) => `${name}=${value}`).join('; ')
}

for (const mode of ['@fastify/secure-session', '@fastify/cookie'] as const) {
  t.test(`@fastify/csrf-protection, ${mode} mode: a token from the form is accepted, a missing or foreign one refused`, async (t) => {
    const app = await csrfApp(t, mode)
    let jar = cookies(await app.inject({ method: 'POST', url: '/login' }))
    const form = await app.inject({ url: '/form', headers: { cookie: jar } })
    t.equal(form.statusCode, 200, 'generateCsrf() works')
    if (mode === '@fastify/secure-session') {
      t.match(sessionCookie(form), /^sid=/, 'the session is stored with the secret')
      t.match(form.headers['set-cookie'], /Max-Age=3600/, 'its cookie options reach the session cookie')
    }
    jar = cookies(form, jar)
    const { token } = form.json() as { token: string }
    const post = (headers: Record<string, string>): Promise<LightMyRequestResponse> => app.inject({ method: 'POST', url: '/transfer', headers })
    t.equal((await post({ cookie: jar, 'x-csrf-token': token })).statusCode, 200, 'the token of this session')
    t.equal((await post({ cookie: jar })).statusCode, 403, 'no token')
    const other = cookies(await app.inject({ method: 'POST', url: '/login' }))
    const otherJar = cookies(await app.inject({ url: '/form', headers: { cookie: other } }), other)
    t.equal((await post({ cookie: otherJar, 'x-csrf-token': token })).statusCode, 403, 'the token of another session')
  })
}

import t from 'tap'
import fastifyPassport from '@fastify/passport'
import type { FastifyInstance } from 'fastify'
import { Strategy as LocalStrategy } from 'passport-local'
import { build } from '../helpers/app'
import { Browser } from '../helpers/browser-jar'
import { failOnHang } from '../helpers/hang'

// @fastify/passport with passport-local, unchanged: its session manager calls regenerate(),
// get(), set() and data(), which is all it needs of a session.

interface User {
  id: string
  name: string
}

const ADA: User = { id: 'u1', name: 'ada' }

async function passportApp (t: tap.Test, authenticator: ConstructorParameters<typeof fastifyPassport.Authenticator>[0] = {}): Promise<FastifyInstance> {
  const passport = new fastifyPassport.Authenticator(authenticator)
  passport.use('local', new LocalStrategy((username, password, done) => {
    done(null, username === ADA.name && password === 'secret' ? ADA : false)
  }))
  passport.registerUserSerializer(async (user: User) => user.id)
  passport.registerUserDeserializer(async (id: string) => (id === ADA.id ? ADA : null))
  const app = await build({}, (app) => {
    app.register(passport.initialize())
    app.register(passport.secureSession())
    // passport's keepSessionInfo lists the keys to keep with Object.keys(request.session).
    app.post('/login-keep', { preValidation: passport.authenticate('local', { keepSessionInfo: true }) }, async () => 'ok')
    app.post('/login', { preValidation: passport.authenticate('local') }, async (req) => {
      req.session.set('role', 'admin')
      return { user: req.user }
    })
    app.get('/me', async (req, reply) => {
      if (!req.isAuthenticated()) return reply.code(401).send({ user: null })
      return { user: req.user }
    })
    app.post('/logout', async (req) => {
      await req.logout()
      return { data: req.session.data() }
    })
    // What an anonymous visitor leaves in a session before logging in.
    app.post('/cart', async (req) => {
      req.session.set('cart', ['book'])
      return { id: req.session.id }
    })
    app.get('/dump', async (req) => ({ data: req.session.data(), isNew: req.session.isNew }))
  })
  t.teardown(() => app.close())
  return app
}

const LOGIN = { username: 'ada', password: 'secret' }

t.test('@fastify/passport: log in with a local strategy, see the user, log out and keep nothing of the login', async (t) => {
  failOnHang(t)
  const browser = new Browser(await passportApp(t))
  const refused = await browser.send('POST', '/login', { username: 'ada', password: 'wrong' })
  t.equal(refused.statusCode, 401, 'a wrong password is refused')

  const login = await browser.send('POST', '/login', LOGIN)
  t.same([login.statusCode, login.json()], [200, { user: ADA }], 'logged in')
  const loginCookie = browser.cookie
  t.ok(loginCookie, 'the login set a session cookie')
  const me = await browser.send('GET', '/me')
  t.same([me.statusCode, me.json()], [200, { user: ADA }], 'the next request sees request.user')
  t.same((await browser.send('GET', '/dump')).json().data, { passport: ADA.id, role: 'admin' }, 'what the login stored')

  const logout = await browser.send('POST', '/logout')
  t.equal(logout.statusCode, 200)
  t.not(browser.cookie, loginCookie, 'the logout changed the session id')
  t.same(logout.json().data, {}, 'the logged-out session holds nothing of the login')
  t.same((await browser.send('GET', '/dump')).json().data, {}, 'nor does what is stored for it')
  t.equal((await browser.send('GET', '/me')).statusCode, 401, 'the protected route refuses')
  const replayed = await browser.app.inject({ url: '/me', headers: { cookie: loginCookie } })
  t.equal(replayed.statusCode, 401, 'the cookie from before the logout no longer logs anyone in')
  t.same((await browser.app.inject({ url: '/dump', headers: { cookie: loginCookie } })).json(), { data: {}, isNew: true }, 'its record is gone')
})

t.test('session fixation: the cookie from before the login is not the one after it, and no longer works', async (t) => {
  failOnHang(t)
  const app = await passportApp(t)
  // An attacker gets a session cookie and plants it in the victim's browser.
  const victim = new Browser(app)
  await victim.send('POST', '/cart')
  const planted = victim.cookie as string
  t.ok(planted, 'an anonymous session with a cookie')

  const login = await victim.send('POST', '/login', LOGIN)
  t.equal(login.statusCode, 200)
  t.not(victim.cookie, planted, 'the login issued a new session id')
  t.equal((await victim.send('GET', '/me')).statusCode, 200, 'the victim is logged in under the new cookie')

  const attacker = await app.inject({ url: '/me', headers: { cookie: planted } })
  t.equal(attacker.statusCode, 401, 'the planted cookie does not log the attacker in')
  t.same((await app.inject({ url: '/dump', headers: { cookie: planted } })).json(), { data: {}, isNew: true }, 'the pre-login session is gone')
  t.same((await victim.send('GET', '/dump')).json().data, { passport: ADA.id, role: 'admin' }, 'nothing of the pre-login session was carried over by default')
})

t.test('clearSessionIgnoreFields carries named pre-login values over the login, under the new id', async (t) => {
  failOnHang(t)
  const browser = new Browser(await passportApp(t, { clearSessionIgnoreFields: ['cart'] }))
  await browser.send('POST', '/cart')
  const before = browser.cookie
  await browser.send('POST', '/login', LOGIN)
  t.not(browser.cookie, before, 'a new id')
  t.same((await browser.send('GET', '/dump')).json().data, { cart: ['book'], passport: ADA.id, role: 'admin' }, 'the cart survived the login')
})

t.test('keepSessionInfo keeps nothing: the session\'s data are not its own properties; clearSessionIgnoreFields does', async (t) => {
  failOnHang(t)
  const browser = new Browser(await passportApp(t))
  await browser.send('POST', '/cart')
  const login = await browser.send('POST', '/login-keep', LOGIN)
  t.equal(login.statusCode, 200)
  t.same((await browser.send('GET', '/dump')).json().data, { passport: ADA.id }, 'the cart is gone')
})

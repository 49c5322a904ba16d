import t from 'tap'
import fastifyPassport from '@fastify/passport'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { Strategy as LocalStrategy } from 'passport-local'
import { build, sessionCookie } from '../helpers/app'
import { failOnHang } from '../helpers/hang'

interface User {
  id: string
  name: string
}

const ADA: User = { id: 'u1', name: 'ada' }

async function passportApp (t: tap.Test): Promise<FastifyInstance> {
  const passport = new fastifyPassport.Authenticator()
  passport.use('local', new LocalStrategy((username, password, done) => {
    done(null, username === ADA.name && password === 'secret' ? ADA : false)
  }))
  passport.registerUserSerializer(async (user: User) => user.id)
  passport.registerUserDeserializer(async (id: string) => (id === ADA.id ? ADA : null))
  const app = await build({}, (app) => {
    app.register(passport.initialize())
    app.register(passport.secureSession())
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
    app.get('/dump', async (req) => ({ data: req.session.data() }))
  })
  t.teardown(() => app.close())
  return app
}

/** A browser's cookie jar in one variable: each response's session cookie replaces the last. */
class Browser {
  cookie: string | undefined

  constructor (readonly app: FastifyInstance) {}

  async send (method: 'GET' | 'POST', url: string, payload?: object): Promise<LightMyRequestResponse> {
    const headers = this.cookie === undefined ? {} : { cookie: this.cookie }
    const res = await this.app.inject({ method, url, headers, payload })
    this.cookie = sessionCookie(res) ?? this.cookie
    return res
  }
}

t.test('@fastify/passport: log in with a local strategy, see the user, log out and keep nothing of the login', async (t) => {
  failOnHang(t)
  const browser = new Browser(await passportApp(t))
  const refused = await browser.send('POST', '/login', { username: 'ada', password: 'wrong' })
  t.equal(refused.statusCode, 401, 'a wrong password is refused')

  const login = await browser.send('POST', '/login', { username: 'ada', password: 'secret' })
  t.same([login.statusCode, login.json()], [200, { user: ADA }], 'logged in')
  const loginCookie = browser.cookie
  t.ok(loginCookie, 'the login set a session cookie')
  const me = await browser.send('GET', '/me')
  t.same([me.statusCode, me.json()], [200, { user: ADA }], 'the protected route sees the user')
  t.same((await browser.send('GET', '/dump')).json().data, { passport: ADA.id, role: 'admin' }, 'what the login stored')

  const logout = await browser.send('POST', '/logout')
  t.equal(logout.statusCode, 200)
  t.same(logout.json().data, {}, 'the logged-out session holds nothing of the login')
  t.same((await browser.send('GET', '/dump')).json().data, {}, 'nor does what is stored for it')
  t.equal((await browser.send('GET', '/me')).statusCode, 401, 'the protected route refuses')
  const replayed = await browser.app.inject({ url: '/me', headers: { cookie: loginCookie } })
  t.equal(replayed.statusCode, 401, 'the cookie from before the logout no longer logs anyone in')
})

import t from 'tap'
import fastifyFlash from '@fastify/flash'
import fastifyPassport from '@fastify/passport'
import type { FastifyInstance } from 'fastify'
import { Strategy as LocalStrategy } from 'passport-local'
import { build, sessionCookie } from '../helpers/app'
import { Browser } from '../helpers/browser-jar'

// @fastify/flash, unchanged: it keeps its messages under the session key `flash` through
// get() and set(), registered after fastify-sessions (it checks that request.session exists).

async function flashApp (t: tap.Test, routes: (app: FastifyInstance) => void = () => {}): Promise<FastifyInstance> {
  const app = await build({}, (app) => {
    app.register(fastifyFlash)
    app.register(async (app) => {
      app.post('/comment', async (req, reply) => {
        req.flash('info', 'comment %s saved', 'no. 1')
        req.flash('info', 'thank you')
        return reply.redirect('/')
      })
      app.get('/', async (req, reply) => ({ info: reply.flash('info') }))
      app.get('/dump', async (req) => ({ data: req.session.data() }))
      routes(app)
    })
  })
  t.teardown(() => app.close())
  return app
}

t.test('request.flash() then a redirect: the next request sees the messages once', async (t) => {
  const browser = new Browser(await flashApp(t))
  const posted = await browser.send('POST', '/comment')
  t.equal(posted.statusCode, 302)
  t.ok(browser.cookie, 'the redirect carries the session cookie')

  t.same((await browser.send('GET', '/')).json(), { info: ['comment no. 1 saved', 'thank you'] }, 'shown after the redirect')
  t.same((await browser.send('GET', '/')).json(), { info: [] }, 'and only once')
  t.same((await browser.send('GET', '/dump')).json().data, { flash: {} }, 'what @fastify/flash leaves in the session')
})

t.test('reply.flash() on a page for anonymous visitors stores a session for each; session.flashes() does not', async (t) => {
  const app = await flashApp(t, (app) => {
    app.get('/own', async (req) => ({ info: req.session.flashes('info') }))
  })
  const theirs = await app.inject({ url: '/' })
  t.same(theirs.json(), { info: [] })
  t.ok(sessionCookie(theirs), '@fastify/flash writes an empty `flash` object back, so the new session is stored')
  const ours = await app.inject({ url: '/own' })
  t.same(ours.json(), { info: [] })
  t.equal(sessionCookie(ours), undefined, 'reading no messages with session.flashes() stores nothing')
})

t.test('the two flash stores are separate: session.flash() is read by session.flashes(), not by reply.flash()', async (t) => {
  const browser = new Browser(await flashApp(t, (app) => {
    app.post('/own', async (req, reply) => {
      req.session.flash('info', 'ours')
      return reply.redirect('/')
    })
    app.get('/own', async (req) => ({ info: req.session.flashes('info') }))
  }))
  await browser.send('POST', '/own')
  t.same((await browser.send('GET', '/')).json(), { info: [] }, 'reply.flash() does not see it')
  t.same((await browser.send('GET', '/own')).json(), { info: ['ours'] }, 'session.flashes() does, once')
  t.same((await browser.send('GET', '/own')).json(), { info: [] })
})

t.test('@fastify/passport failureFlash: the failed login\'s message shows on the page it redirects to, under the same session', async (t) => {
  const passport = new fastifyPassport.Authenticator()
  passport.use('local', new LocalStrategy((_username, _password, done) => { done(null, false) }))
  const browser = new Browser(await flashApp(t, (app) => {
    app.register(passport.initialize())
    app.register(passport.secureSession())
    app.post('/login', { preValidation: passport.authenticate('local', { failureRedirect: '/login', failureFlash: 'wrong user name or password' }) }, async () => 'never')
    app.get('/login', async (req, reply) => ({ error: reply.flash('error') }))
  }))
  const failed = await browser.send('POST', '/login', { username: 'ada', password: 'nope' })
  t.equal(failed.headers.location, '/login')
  t.same((await browser.send('GET', '/login')).json(), { error: ['wrong user name or password'] })
  t.same((await browser.send('GET', '/login')).json(), { error: [] })
})

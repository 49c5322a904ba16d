import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { sessionCookie } from '../helpers/app'
import { dump, faultyApp, seed, type Options } from '../helpers/faulty-app'
import { Races } from '../helpers/gate'
import { failOnHang } from '../helpers/hang'

const races = new Races()
const START = 1_700_000_000_000

/** Five read-only requests carrying a cookie whose record is gone: at most one store read in all, no cookie sent. */
async function assertRememberedDead (t: tap.Test, app: FastifyInstance, cookie: string, reads: () => number): Promise<void> {
  for (let i = 0; i < 5; i++) {
    const res = await app.inject({ url: '/dump', headers: { cookie } })
    t.same([res.statusCode, res.json().isNew, res.json().data], [200, true, {}], `request ${i + 1}: a fresh session`)
    t.equal(sessionCookie(res), undefined, `request ${i + 1}: no session cookie`)
  }
  t.ok(reads() <= 1, `at most one store read for the dead cookie, saw ${reads()}`)
}

t.test('an authentic cookie whose record is gone costs one store read, not one per request', async (t) => {
  t.test('record destroyed through the store', async (t) => {
    failOnHang(t)
    const { app, store } = await faultyApp(t)
    const cookie = await seed(app)
    await store.inner.destroy(store.keys[store.keys.length - 1])
    store.reset()
    await assertRememberedDead(t, app, cookie, () => store.calls.get)
    t.equal(store.calls.get, 1, 'exactly one read: the plugin cannot know before asking')
  })

  t.test('cookie issued before a logout on another request', async (t) => {
    failOnHang(t)
    const { app, store } = await faultyApp(t)
    const cookie = await seed(app)
    t.equal((await app.inject({ method: 'POST', url: '/logout', headers: { cookie } })).statusCode, 200)
    store.reset()
    await assertRememberedDead(t, app, cookie, () => store.calls.get)
  })
})

t.test('reload() that finds the record gone starts a new session whose absolute timeout starts afresh', async (t) => {
  failOnHang(t)
  let now = START
  t.capture(Date, 'now', () => now)
  const { app } = await faultyApp(t, { idleTimeout: 10, absoluteTimeout: 10 }, (app, store) => {
    app.post('/reload', async (req) => {
      // Another process ends the session while this request runs.
      await store.inner.destroy(store.keys[0])
      await req.session.reload()
      req.session.set('x', 1)
      return { isNew: req.session.isNew }
    })
  })
  const cookie = await seed(app)
  now = START + 9_000
  const reloaded = await app.inject({ method: 'POST', url: '/reload', headers: { cookie } })
  t.equal(reloaded.statusCode, 200)
  const fresh = sessionCookie(reloaded)
  t.ok(fresh !== undefined && fresh !== cookie, 'a new cookie for the new session')
  now = START + 15_000
  const later = await dump(app, fresh ?? cookie)
  t.same([later.isNew, later.data], [false, { x: 1 }], 'six seconds later the new session is alive, 15 s after the old one began')
})

t.test('a read-only request in flight while another request logs in sends no cookie for the ended session', async (t) => {
  const cases: Array<[string, Options, number]> = [
    ['rolling: true', { rolling: true }, 0],
    ['cookie.maxAge with a touch due', { cookie: { maxAge: 3600 }, idleTimeout: 100 }, 11_000]
  ]
  for (const [name, options, advanceMs] of cases) {
    t.test(name, async (t) => {
      failOnHang(t)
      let now = START
      t.capture(Date, 'now', () => now)
      const { app } = await faultyApp(t, options, (app) => {
        app.get('/peek', async (req) => {
          const user = req.session.get('userId')
          await races.wait()
          return { user }
        })
        app.get('/peek-now', async (req) => ({ user: req.session.get('userId') }))
        app.post('/login', async (req) => {
          await req.session.regenerate()
          req.session.set('userId', 'ada')
          return 'welcome'
        })
      })
      const cookie = await seed(app, 'userId', 'guest')
      const other = await seed(app, 'userId', 'guest')
      now += advanceMs
      const alive = await app.inject({ url: '/peek-now', headers: { cookie: other } })
      t.equal(sessionCookie(alive), other, 'the same read on a live session re-sends its cookie')
      const [reader, login] = await races.run(
        () => app.inject({ url: '/peek', headers: { cookie } }),
        () => app.inject({ method: 'POST', url: '/login', headers: { cookie } })
      )
      t.equal(login.statusCode, 200)
      t.ok(sessionCookie(login), 'the login issues the new cookie')
      t.same([reader.statusCode, reader.json()], [200, { user: 'guest' }], 'the reader answers with what it read')
      t.equal(sessionCookie(reader), undefined, 'the reader sends no cookie that would replace the new one')
    })
  }
})

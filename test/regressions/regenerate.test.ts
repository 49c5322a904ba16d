import t from 'tap'
import { sessionCookie } from '../helpers/app'
import { dump, faultyApp } from '../helpers/faulty-app'
import { failOnHang } from '../helpers/hang'

t.test('regenerate() starts the new session with empty data; regenerate(keep) carries over only the listed keys', async (t) => {
  const cases: Array<[string, string[] | undefined, Record<string, unknown>]> = [
    ['regenerate()', undefined, {}],
    ["regenerate(['cart'])", ['cart'], { cart: ['apple'] }]
  ]
  for (const [name, keep, expected] of cases) {
    t.test(name, async (t) => {
      failOnHang(t)
      const { app } = await faultyApp(t, {}, (app) => {
        app.post('/login', async (req) => {
          req.session.set('visits', 3)
          await req.session.regenerate()
          req.session.set('role', 'admin')
          req.session.set('cart', ['apple'])
          return 'welcome'
        })
        app.post('/switch', async (req) => {
          await req.session.regenerate(keep)
          const data = req.session.data()
          req.session.set('step', 'switched')
          return { data }
        })
      })
      const login = await app.inject({ method: 'POST', url: '/login' })
      const cookie = sessionCookie(login) as string
      t.same((await dump(app, cookie)).data, { role: 'admin', cart: ['apple'] }, 'what was there before the login is gone')
      const res = await app.inject({ method: 'POST', url: '/switch', headers: { cookie } })
      t.equal(res.statusCode, 200)
      t.same(res.json().data, expected, 'data() right after regenerate')
      const fresh = sessionCookie(res)
      t.ok(fresh !== undefined && fresh !== cookie, 'a new cookie')
      t.same((await dump(app, fresh ?? cookie)).data, { ...expected, step: 'switched' }, 'what the new session stores')
    })
  }
})

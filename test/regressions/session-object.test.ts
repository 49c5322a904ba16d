import t from 'tap'
import { build } from '../helpers/app'
import { failOnHang } from '../helpers/hang'

t.test('assigning a property to request.session throws a TypeError instead of keeping a value that is never stored', async (t) => {
  failOnHang(t)
  t.equal((function (this: unknown) { return this })(), undefined, 'this file runs in strict mode, where a refused assignment throws')
  const app = await build({}, (app) => {
    app.post('/assign-caught', async (req) => {
      try {
        (req.session as unknown as Record<string, unknown>).user = 'x'
      } catch (err) {
        return { threw: err instanceof TypeError, name: (err as Error).name, kept: Object.hasOwn(req.session, 'user') }
      }
      return { threw: false, name: null, kept: Object.hasOwn(req.session, 'user') }
    })
    app.post('/assign', async (req) => {
      (req.session as unknown as Record<string, unknown>).user = 'x'
      return 'assigned'
    })
  })
  t.teardown(() => app.close())
  const caught = await app.inject({ method: 'POST', url: '/assign-caught' })
  t.same(caught.json(), { threw: true, name: 'TypeError', kept: false }, 'the assignment throws a TypeError and nothing is kept')
  const uncaught = await app.inject({ method: 'POST', url: '/assign' })
  t.equal(uncaught.statusCode, 500, 'a route that does not catch it fails')
})

import t from 'tap'
import type { FastifyInstance } from 'fastify'
import type { Session } from '../../src/index'
import { dump, faultyApp, replyCode, seed } from '../helpers/faulty-app'
import { failOnHang } from '../helpers/hang'

const IN_UPDATE = 'FST_SESS_IN_UPDATE'

function errorCode (err: unknown): string {
  return String((err as { code?: unknown }).code)
}

/** A later request writing the same session answers, and what it wrote reads back. */
async function assertWritable (t: tap.Test, app: FastifyInstance, cookie: string): Promise<void> {
  const res = await app.inject({ method: 'POST', url: '/put', query: { key: 'after', value: 'yes' }, headers: { cookie } })
  t.equal(res.statusCode, 200, 'a later write of the same session answers 200')
  t.equal((await dump(app, cookie)).data.after, 'yes', 'and what it wrote reads back')
}

t.test('a nested update() is refused at once and the session stays writable', async (t) => {
  failOnHang(t)
  const { app } = await faultyApp(t, {}, (app) => {
    app.post('/nested', async (req) => {
      let refused = 'not refused'
      await req.session.update(async (s) => {
        s.set('outer', 'kept')
        try {
          await s.update((inner) => { inner.set('inner', 'ran') })
        } catch (err) {
          refused = errorCode(err)
        }
      })
      return { refused }
    })
  })
  const cookie = await seed(app)
  const res = await app.inject({ method: 'POST', url: '/nested', headers: { cookie } })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { refused: IN_UPDATE })
  t.same((await dump(app, cookie)).data, { user: 'ada', outer: 'kept' }, 'the outer update committed; the nested function never ran')
  await assertWritable(t, app, cookie)
})

t.test('save() inside update() is refused at once and later writes of the session work', async (t) => {
  for (const [when, awaitFirst] of [['called at once', false], ['called after an await', true]] as const) {
    t.test(when, async (t) => {
      failOnHang(t)
      const { app } = await faultyApp(t, {}, (app) => {
        app.post('/save-inside', async (req) => {
          await req.session.update(async (s) => {
            s.set('half', 'done')
            if (awaitFirst) await new Promise((resolve) => setImmediate(resolve))
            await s.save()
          })
          return 'unreachable'
        })
      })
      const cookie = await seed(app)
      const res = await app.inject({ method: 'POST', url: '/save-inside', headers: { cookie } })
      t.equal(res.statusCode, 500)
      t.equal(replyCode(res), IN_UPDATE)
      t.same((await dump(app, cookie)).data, { user: 'ada' }, 'the failed update left nothing behind')
      await assertWritable(t, app, cookie)
    })
  }
})

t.test('regenerate(), destroy() and reload() inside update() are refused at once', async (t) => {
  const calls: Record<string, (s: Session) => Promise<void>> = {
    regenerate: (s) => s.regenerate(),
    destroy: (s) => s.destroy(),
    reload: (s) => s.reload()
  }
  for (const [method, call] of Object.entries(calls)) {
    t.test(method, async (t) => {
      failOnHang(t)
      const { app } = await faultyApp(t, {}, (app) => {
        app.post('/inside', async (req) => {
          let refused = 'not refused'
          await req.session.update(async (s) => {
            s.set('during', 'update')
            try {
              await call(s)
            } catch (err) {
              refused = errorCode(err)
            }
          })
          return { refused }
        })
      })
      const cookie = await seed(app)
      const res = await app.inject({ method: 'POST', url: '/inside', headers: { cookie } })
      t.same([res.statusCode, res.json()], [200, { refused: IN_UPDATE }])
      t.same((await dump(app, cookie)).data, { user: 'ada', during: 'update' }, 'same session, the update committed')
      await assertWritable(t, app, cookie)
    })
  }
})

t.test('changes made in an update() whose function throws are not committed; changes made before it are', async (t) => {
  failOnHang(t)
  const { app } = await faultyApp(t, {}, (app) => {
    app.post('/cart', async (req) => {
      req.session.set('cart', ['apple'])
      return 'ok'
    })
    app.post('/half', async (req) => {
      req.session.set('before', 'kept')
      try {
        await req.session.update((s) => {
          s.set('half', true)
          ;(s.get('cart') as string[]).push('half')
          throw new Error('refused halfway')
        })
      } catch {
        // The route handles the failure and answers normally.
      }
      return { half: req.session.has('half') }
    })
  })
  const cookie = await seed(app)
  await app.inject({ method: 'POST', url: '/cart', headers: { cookie } })
  const res = await app.inject({ method: 'POST', url: '/half', headers: { cookie } })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { half: false }, 'the request no longer sees the change')
  const { data } = await dump(app, cookie)
  t.equal(Object.hasOwn(data, 'half'), false, 'a value set in the failed update is not stored')
  t.same(data.cart, ['apple'], 'an in-place change in the failed update is not stored')
  t.equal(data.before, 'kept', 'the change made before update() is stored')
})

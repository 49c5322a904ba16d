import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { build, OLD_SECRET, SECRET, sessionCookie, setCookieLine } from './helpers/app'
import { StoreSpy } from './helpers/store-spy'

async function setup (t: tap.Test, routes: (app: FastifyInstance) => void, options = {}) {
  const store = new StoreSpy()
  t.teardown(() => store.close())
  const app = await build({ store, ...options }, (app) => {
    app.get('/seed', async (req) => {
      req.session.set('user', 'ada')
      req.session.set('cart', ['x'])
      req.session.set('theme', 'dark')
      return 'ok'
    })
    app.get('/dump', async (req) => ({ data: req.session.data(), isNew: req.session.isNew }))
    routes(app)
  })
  t.teardown(() => app.close())
  const cookie = sessionCookie(await app.inject('/seed')) as string
  store.reset()
  return { app, store, cookie }
}

t.test('regenerate starts empty under a new id and destroys the old record', async (t) => {
  const { app, store, cookie } = await setup(t, (app) => {
    app.post('/login', async (req) => {
      const before = req.session.id
      await req.session.regenerate()
      return { changed: before !== req.session.id, isNew: req.session.isNew }
    })
  })
  const res = await app.inject({ method: 'POST', url: '/login', headers: { cookie } })
  t.same(res.json(), { changed: true, isNew: true })
  const fresh = sessionCookie(res) as string
  t.ok(fresh)
  t.not(fresh, cookie)
  t.equal(store.calls.destroy, 1)
  t.same((await app.inject({ url: '/dump', headers: { cookie: fresh } })).json().data, {})
  t.same((await app.inject({ url: '/dump', headers: { cookie } })).json(), { data: {}, isNew: true }, 'old cookie is dead')
})

t.test('regenerate(keep) keeps only the listed keys', async (t) => {
  const { app, cookie } = await setup(t, (app) => {
    app.post('/login', async (req) => { await req.session.regenerate(['theme']); req.session.set('user', 'bob'); return 'ok' })
  })
  const fresh = sessionCookie(await app.inject({ method: 'POST', url: '/login', headers: { cookie } }))
  t.same((await app.inject({ url: '/dump', headers: { cookie: fresh } })).json().data, { theme: 'dark', user: 'bob' })
})

t.test('regenerate on a new session only changes the id', async (t) => {
  const { app, store } = await setup(t, (app) => {
    app.post('/login', async (req) => { await req.session.regenerate(); return 'ok' })
  })
  const res = await app.inject({ method: 'POST', url: '/login' })
  t.ok(sessionCookie(res), 'a regenerated session is stored even without data')
  t.equal(store.calls.destroy, 0)
})

t.test('regenerate rejects a bad keep list', async (t) => {
  const { app } = await setup(t, (app) => {
    app.post('/bad', async (req) => { await req.session.regenerate('theme' as unknown as string[]); return 'ok' })
  })
  const res = await app.inject({ method: 'POST', url: '/bad' })
  t.equal(res.statusCode, 500)
  t.equal(res.json().code, 'FST_SESS_INVALID_KEY')
})

t.test('destroy removes the record, expires the cookie and is final', async (t) => {
  const { app, store, cookie } = await setup(t, (app) => {
    app.post('/logout', async (req) => {
      await req.session.destroy()
      await req.session.destroy()
      let error = ''
      try { req.session.set('a', 1) } catch (err) { error = (err as { code: string }).code }
      return { error, user: req.session.get('user') ?? null, flashes: req.session.flashes() }
    })
  })
  const res = await app.inject({ method: 'POST', url: '/logout', headers: { cookie } })
  t.same(res.json(), { error: 'FST_SESS_DESTROYED', user: null, flashes: {} })
  t.match(setCookieLine(res), /^sid=;.*Expires=Thu, 01 Jan 1970/)
  t.equal(res.headers['cache-control'], 'no-store')
  t.equal(store.calls.destroy, 1)
  t.equal(store.calls.set, 0)
  t.same((await app.inject({ url: '/dump', headers: { cookie } })).json(), { data: {}, isNew: true })
})

t.test('every mutating method throws after destroy', async (t) => {
  const { app, cookie } = await setup(t, (app) => {
    app.post('/after', async (req) => {
      await req.session.destroy()
      const codes: Record<string, string> = {}
      const calls: Record<string, () => unknown> = {
        set: () => req.session.set('a', 1),
        delete: () => req.session.delete('a'),
        clear: () => req.session.clear(),
        flash: () => req.session.flash('info', 'x'),
        touch: () => req.session.touch(),
        options: () => req.session.options({ maxAge: 5 }),
        regenerate: () => req.session.regenerate(),
        save: () => req.session.save(),
        reload: () => req.session.reload()
      }
      for (const [name, call] of Object.entries(calls)) {
        try { await call() } catch (err) { codes[name] = (err as { code: string }).code }
      }
      return codes
    })
  })
  const codes = (await app.inject({ method: 'POST', url: '/after', headers: { cookie } })).json()
  t.same(Object.keys(codes).sort(), ['clear', 'delete', 'flash', 'options', 'regenerate', 'reload', 'save', 'set', 'touch'])
  t.ok(Object.values(codes).every((c) => c === 'FST_SESS_DESTROYED'))
})

t.test('flash messages are read once', async (t) => {
  const { app, cookie } = await setup(t, (app) => {
    app.post('/flash', async (req) => {
      req.session.flash('info', 'saved')
      req.session.flash('info', 'again')
      req.session.flash('error', 'oops')
      return 'ok'
    })
    app.get('/info', async (req) => req.session.flashes('info'))
    app.get('/all', async (req) => req.session.flashes())
    app.get('/none', async (req) => req.session.flashes('nothing'))
  })
  await app.inject({ method: 'POST', url: '/flash', headers: { cookie } })
  t.same((await app.inject({ url: '/info', headers: { cookie } })).json(), ['saved', 'again'])
  t.same((await app.inject({ url: '/info', headers: { cookie } })).json(), [])
  t.same((await app.inject({ url: '/all', headers: { cookie } })).json(), { error: ['oops'] })
  t.same((await app.inject({ url: '/all', headers: { cookie } })).json(), {})
  t.same((await app.inject({ url: '/none', headers: { cookie } })).json(), [])
  t.same((await app.inject({ url: '/dump', headers: { cookie } })).json().data, { user: 'ada', cart: ['x'], theme: 'dark' })
})

t.test('data access: set undefined deletes, has, delete, clear, data() is a copy', async (t) => {
  const { app, cookie } = await setup(t, (app) => {
    app.post('/edit', async (req) => {
      const s = req.session
      s.set('theme', undefined)
      s.delete('missing')
      const copy = s.data()
      ;(copy.cart as string[]).push('changed-copy')
      return { hasTheme: s.has('theme'), hasUser: s.has('user'), user: s.get('user'), proto: s.get('constructor') ?? null }
    })
    app.post('/clear', async (req) => { req.session.clear(); req.session.set('only', 1); return 'ok' })
  })
  t.same((await app.inject({ method: 'POST', url: '/edit', headers: { cookie } })).json(), { hasTheme: false, hasUser: true, user: 'ada', proto: null })
  t.same((await app.inject({ url: '/dump', headers: { cookie } })).json().data, { user: 'ada', cart: ['x'] })
  await app.inject({ method: 'POST', url: '/clear', headers: { cookie } })
  t.same((await app.inject({ url: '/dump', headers: { cookie } })).json().data, { only: 1 })
})

t.test('unusable keys and values fail with a clear error naming the key', async (t) => {
  const { app } = await setup(t, (app) => {
    app.post('/bad/:what', async (req) => {
      const what = (req.params as { what: string }).what
      const circular: Record<string, unknown> = {}
      circular.self = circular
      if (what === 'bigint') req.session.set('big', 10n)
      if (what === 'circular') req.session.set('loop', circular)
      if (what === 'function') req.session.set('fn', (() => 1) as unknown)
      if (what === 'proto') req.session.set('__proto__', 1)
      if (what === 'empty') req.session.set('', 1)
      if (what === 'mutated') {
        req.session.set('list', [])
        await req.session.save()
        const list = req.session.get('list') as unknown[]
        list.push(5n)
      }
      return 'ok'
    })
  })
  const expect: Array<[string, string, RegExp]> = [
    ['bigint', 'FST_SESS_NOT_SERIALIZABLE', /"big".*bigint/],
    ['circular', 'FST_SESS_NOT_SERIALIZABLE', /"loop".*circular/i],
    ['function', 'FST_SESS_NOT_SERIALIZABLE', /"fn"/],
    ['proto', 'FST_SESS_INVALID_KEY', /__proto__/],
    ['empty', 'FST_SESS_INVALID_KEY', /""/],
    ['mutated', 'FST_SESS_NOT_SERIALIZABLE', /"list"/]
  ]
  for (const [what, code, message] of expect) {
    const res = await app.inject({ method: 'POST', url: `/bad/${what}` })
    t.equal(res.statusCode, 500, what)
    t.equal(res.json().code, code, what)
    t.match(res.json().message, message, what)
  }
})

t.test('save() commits before the response; later changes commit too', async (t) => {
  const { app, store, cookie } = await setup(t, (app) => {
    app.post('/save', async (req) => {
      req.session.set('step', 1)
      await req.session.save()
      const savedBeforeReply = store.calls.set
      const cart = req.session.get('cart') as string[]
      cart.push('after-save')
      return { savedBeforeReply }
    })
  })
  t.same((await app.inject({ method: 'POST', url: '/save', headers: { cookie } })).json(), { savedBeforeReply: 1 })
  t.equal(store.calls.set, 2)
  t.same((await app.inject({ url: '/dump', headers: { cookie } })).json().data, { user: 'ada', cart: ['x', 'after-save'], theme: 'dark', step: 1 })
})

t.test('save() on a new session sets the cookie before a redirect', async (t) => {
  const { app } = await setup(t, (app) => {
    app.post('/go', async (req, reply) => {
      req.session.set('a', 1)
      await req.session.save()
      return reply.redirect('/dump', 303)
    })
  })
  const res = await app.inject({ method: 'POST', url: '/go' })
  t.equal(res.statusCode, 303)
  t.ok(sessionCookie(res))
})

t.test('reload() drops uncommitted changes', async (t) => {
  const { app, cookie } = await setup(t, (app) => {
    app.post('/reload', async (req) => {
      req.session.set('user', 'mallory')
      await req.session.reload()
      return req.session.data()
    })
    app.post('/reload-new', async (req) => {
      req.session.set('x', 1)
      await req.session.reload()
      return { data: req.session.data(), isNew: req.session.isNew }
    })
  })
  t.same((await app.inject({ method: 'POST', url: '/reload', headers: { cookie } })).json(), { user: 'ada', cart: ['x'], theme: 'dark' })
  t.same((await app.inject({ url: '/dump', headers: { cookie } })).json().data.user, 'ada')
  const res = await app.inject({ method: 'POST', url: '/reload-new' })
  t.same(res.json(), { data: {}, isNew: true })
  t.equal(res.headers['set-cookie'], undefined)
})

t.test('reload() of a session destroyed elsewhere starts over with a new id', async (t) => {
  const { app, store, cookie } = await setup(t, (app) => {
    app.post('/reload', async (req) => {
      const before = req.session.id
      // Destroyed by another process: straight in the store, not through this plugin.
      await store.inner.destroy(store.keys[0])
      await req.session.reload()
      req.session.set('again', true)
      return { sameId: before === req.session.id, isNew: req.session.isNew }
    })
  })
  const res = await app.inject({ method: 'POST', url: '/reload', headers: { cookie } })
  t.same(res.json(), { sameId: false, isNew: true })
  t.not(sessionCookie(res), cookie)
})

t.test('options() sets cookie attributes for this response', async (t) => {
  const { app, cookie } = await setup(t, (app) => {
    app.post('/remember', async (req) => { req.session.options({ maxAge: 86400 }); return 'ok' })
  })
  const res = await app.inject({ method: 'POST', url: '/remember', headers: { cookie } })
  t.equal(sessionCookie(res), cookie)
  t.match(setCookieLine(res), /Max-Age=86400/)
})

t.test('options() calls add up; cookie attributes are checked like the registration options, other keys ignored', async (t) => {
  const { app, cookie } = await setup(t, (app) => {
    app.post('/both', async (req) => {
      req.session.options({ maxAge: 90.2 })
      req.session.options({ domain: 'example.com', sameSite: 'strict' })
      return 'ok'
    })
    app.post('/bad', async (req, reply) => {
      const attempts = [{ path: 'no-slash' }, { domain: 'a;b' }, { sameSite: 'none', secure: false }, { secure: 'yes' }, { expires: new Date() }, { priority: 'high' }, null, { colour: 'red', userInfo: 'ada' }]
      return attempts.map((attempt) => {
        try {
          req.session.options(attempt as never)
          return 'accepted'
        } catch (err) {
          return `${(err as { code: string }).code} ${(err as Error).message}`
        }
      })
    })
  })
  const res = await app.inject({ method: 'POST', url: '/both', headers: { cookie } })
  t.equal(setCookieLine(res), `${cookie}; Max-Age=91; Domain=example.com; Path=/; HttpOnly; SameSite=Strict`, 'whole seconds, rounded up')
  const bad = (await app.inject({ method: 'POST', url: '/bad', headers: { cookie } })).json() as string[]
  t.match(bad, [
    /^FST_SESS_INVALID_OPTION .*session\.options\(\)\.path/,
    /^FST_SESS_INVALID_OPTION .*session\.options\(\)\.domain/,
    /^FST_SESS_INVALID_OPTION .*session\.options\(\)\.secure/,
    /^FST_SESS_INVALID_OPTION .*session\.options\(\)\.secure/,
    /^FST_SESS_INVALID_OPTION .*session\.options\(\)\.expires.*use maxAge/,
    /^FST_SESS_INVALID_OPTION .*session\.options\(\)\.priority/,
    /^FST_SESS_INVALID_OPTION .*session\.options\(\)/,
    'accepted'
  ], 'cookie attributes are checked; other keys (another plugin\'s) are ignored')
})

t.test('the session cookie shares the response with reply.setCookie() cookies, once', async (t) => {
  const { app, cookie } = await setup(t, (app) => {
    app.post('/twice', async (req, reply) => {
      req.session.set('step', 1)
      await req.session.save()
      reply.setCookie('theme', 'dark')
      req.session.set('step', 2)
      await req.session.regenerate()
      return 'ok'
    })
    app.post('/save-then-destroy', async (req, reply) => {
      reply.setCookie('theme', 'light')
      req.session.set('step', 3)
      await req.session.save()
      await req.session.destroy()
      return 'ok'
    })
  })
  const twice = await app.inject({ method: 'POST', url: '/twice', headers: { cookie } })
  const lines = [twice.headers['set-cookie']].flat() as string[]
  t.equal(lines.filter((l) => l.startsWith('sid=')).length, 1, 'one session cookie')
  t.not(sessionCookie(twice), cookie, 'the last one: after regenerate')
  t.equal(sessionCookie(twice, 'theme'), 'theme=dark')
  const destroyed = await app.inject({ method: 'POST', url: '/save-then-destroy', headers: { cookie } })
  const after = [destroyed.headers['set-cookie']].flat() as string[]
  t.same(after.filter((l) => l.startsWith('sid=')), ['sid=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax; Expires=Thu, 01 Jan 1970 00:00:00 GMT'])
  t.equal(sessionCookie(destroyed, 'theme'), 'theme=light')
})

t.test('a cookie signed with a previous secret is accepted and re-signed', async (t) => {
  const store = new StoreSpy()
  t.teardown(() => store.close())
  const routes = (app: FastifyInstance) => {
    app.get('/w', async (req) => { req.session.set('a', 'kept'); return 'ok' })
    app.get('/r', async (req) => req.session.get('a') ?? 'none')
  }
  const old = await build({ store, secret: OLD_SECRET }, routes)
  const cookie = sessionCookie(await old.inject('/w')) as string
  await old.close()
  const rotated = await build({ store, secret: [SECRET, OLD_SECRET] }, routes)
  t.teardown(() => rotated.close())
  const res = await rotated.inject({ url: '/r', headers: { cookie } })
  t.equal(res.body, 'kept')
  const resigned = sessionCookie(res) as string
  t.ok(resigned)
  t.equal(resigned.slice(0, 47), cookie.slice(0, 47), 'same id')
  t.not(resigned, cookie, 'new signature')
  const again = await rotated.inject({ url: '/r', headers: { cookie: resigned } })
  t.equal(again.body, 'kept')
  t.equal(again.headers['set-cookie'], undefined, 'current signature: not re-sent')
  const dropped = await build({ store, secret: SECRET }, routes)
  t.teardown(() => dropped.close())
  t.equal((await dropped.inject({ url: '/r', headers: { cookie } })).body, 'none', 'removed secret: fresh session')
})

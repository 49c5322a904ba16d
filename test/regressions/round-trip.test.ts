import t from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { CookieStore, MemoryStore, RedisStore, type FastifySessionsOptions } from '../../src/index'
import { build, sessionCookie, setCookieLine } from '../helpers/app'
import { faultyApp } from '../helpers/faulty-app'
import { failOnHang } from '../helpers/hang'
import { redisForTest } from '../helpers/redis-servers'
import { stateRoutes } from '../helpers/routes'

interface Inspected {
  names: string[]
  proto: unknown
  ctor: unknown
}

function own (value: object, key: string): unknown {
  return Object.getOwnPropertyDescriptor(value, key)?.value ?? null
}

/** Stores a query string or a JSON text as one value, and shows its own keys. */
function valueRoutes (app: FastifyInstance): void {
  app.get('/keep-query', async (req) => {
    req.session.set('q', req.query)
    return 'kept'
  })
  // Fastify's JSON parser refuses these keys: the route builds the value itself.
  app.post('/keep-json', async (req) => {
    req.session.set('q', JSON.parse(req.body as string))
    return 'kept'
  })
  app.get('/inspect', async (req): Promise<Inspected | null> => {
    const q = req.session.get('q')
    if (q === null || typeof q !== 'object') return null
    return { names: Object.getOwnPropertyNames(q), proto: own(q, '__proto__'), ctor: own(q, 'constructor') }
  })
}

const POISON = '{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}}'

/** Both values read back intact on `app`, pollute nothing, and logout still works. */
function roundTrips (t: tap.Test, make: (t: tap.Test) => Promise<FastifyInstance>): void {
  const values: Array<[string, (app: FastifyInstance) => Promise<LightMyRequestResponse>, Inspected]> = [
    ['a query string with a __proto__ key', (app) => app.inject({ url: '/keep-query?__proto__=x' }),
      { names: ['__proto__'], proto: 'x', ctor: null }],
    ['a JSON body with __proto__ and constructor keys',
      (app) => app.inject({ method: 'POST', url: '/keep-json', headers: { 'content-type': 'text/plain' }, payload: POISON }),
      { names: ['__proto__', 'constructor'], proto: { polluted: true }, ctor: { prototype: { polluted: true } } }]
  ]
  for (const [name, keep, expected] of values) {
    t.test(name, async (t) => {
      failOnHang(t, 5000)
      const app = await make(t)
      const kept = await keep(app)
      t.equal(kept.statusCode, 200, 'set() accepts the value')
      const cookie = sessionCookie(kept) as string
      // Twice: a cookie store decodes the first time and may copy what it decoded after.
      for (const which of ['the next request', 'a later one']) {
        const res = await app.inject({ url: '/inspect', headers: { cookie } })
        t.equal(res.statusCode, 200, `${which} answers 200`)
        // Parsed with JSON.parse on purpose: it keeps "__proto__" as an own key.
        const inspected = res.statusCode === 200 ? JSON.parse(res.body) as Inspected | null : null
        t.same(inspected?.names, expected.names, `${which}: the same own keys`)
        t.same(inspected?.proto, expected.proto, `${which}: the own __proto__ value`)
        t.same(inspected?.ctor, expected.ctor, `${which}: the own constructor value`)
        t.equal(({} as Record<string, unknown>).polluted, undefined, 'no prototype was polluted')
      }
      const logout = await app.inject({ method: 'POST', url: '/logout', headers: { cookie } })
      t.equal(logout.statusCode, 200, 'logout works')
      t.match(setCookieLine(logout), /^sid=;/, 'and clears the cookie')
    })
  }
}

t.test('any value set() accepts reads back intact, keys like __proto__ included', async (t) => {
  const on = (options: Partial<FastifySessionsOptions>) => async (t: tap.Test): Promise<FastifyInstance> => {
    const app = await build(options, (app) => {
      stateRoutes(app)
      valueRoutes(app)
    })
    t.teardown(() => app.close())
    return app
  }
  t.test('MemoryStore', async (t) => roundTrips(t, on({ store: new MemoryStore() })))
  t.test('MemoryStore with encryptAtRest', async (t) => roundTrips(t, on({ store: new MemoryStore(), encryptAtRest: true })))
  t.test('CookieStore', async (t) => roundTrips(t, on({ store: new CookieStore() })))
  t.test('RedisStore', async (t) => {
    const client = await redisForTest(t)
    if (client === undefined) return
    roundTrips(t, on({ store: new RedisStore({ client }) }))
  })
})

t.test('flash messages of any type name read back once, prototype names included', async (t) => {
  async function setup (t: tap.Test): Promise<FastifyInstance> {
    const { app } = await faultyApp(t, {}, (app) => {
      app.post('/flash', async (req) => {
        const { type, message } = req.query as { type: string, message: string }
        req.session.flash(type, message)
        return 'ok'
      })
      app.get('/flashes', async (req) => req.session.flashes((req.query as { type: string }).type))
    })
    return app
  }
  async function flash (t: tap.Test, app: FastifyInstance, cookie: string | undefined, type: string, message: string): Promise<string> {
    const res = await app.inject({ method: 'POST', url: '/flash', query: { type, message }, headers: cookie === undefined ? {} : { cookie } })
    t.equal(res.statusCode, 200, `flash('${type}') answers 200`)
    return sessionCookie(res) ?? cookie ?? ''
  }
  async function flashes (t: tap.Test, app: FastifyInstance, cookie: string, type: string): Promise<unknown> {
    const res = await app.inject({ url: '/flashes', query: { type }, headers: { cookie } })
    t.equal(res.statusCode, 200, `flashes('${type}') answers 200`)
    try {
      return JSON.parse(res.body)
    } catch {
      return `not JSON: ${JSON.stringify(res.body)}`
    }
  }

  for (const [type, message] of [['constructor', 'x'], ['__proto__', 'y']]) {
    t.test(`flash('${type}')`, async (t) => {
      failOnHang(t)
      const app = await setup(t)
      const cookie = await flash(t, app, undefined, type, message)
      t.same(await flashes(t, app, cookie, type), [message], 'read once')
      t.same(await flashes(t, app, cookie, type), [], 'then gone')
    })
  }

  t.test("flashes('toString') on a session with other flashes", async (t) => {
    failOnHang(t)
    const app = await setup(t)
    const cookie = await flash(t, app, undefined, 'info', 'saved')
    t.same(await flashes(t, app, cookie, 'toString'), [], 'no messages of that type')
    t.same(await flashes(t, app, cookie, 'info'), ['saved'], 'the others are still there')
  })
})

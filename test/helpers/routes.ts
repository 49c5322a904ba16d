import type { FastifyInstance } from 'fastify'
import type { Barrier } from './gate'

/** The routes the lifecycle tests of every backend share. */
export function basicRoutes (app: FastifyInstance): void {
  app.get('/anon', async () => 'hello')
  app.get('/read', async (req) => ({ n: req.session.get('n') ?? null, isNew: req.session.isNew }))
  app.get('/write', async (req) => {
    req.session.set('n', ((req.session.get('n') as number | undefined) ?? 0) + 1)
    return { n: req.session.get('n') }
  })
  // Appends in place to a value read with get(): the session must notice.
  app.get('/cart', async (req) => {
    const cart = req.session.get('cart') as string[] | undefined
    if (cart === undefined) req.session.set('cart', ['a'])
    else cart.push(String.fromCharCode(97 + cart.length))
    return req.session.get('cart')
  })
  app.get('/touch', async (req) => { req.session.touch(); return 'ok' })
}

/**
 * Routes that show and change a session through its public API:
 * `/anon` never touches it, `/dump` reads it all, `POST /put?key=&value=` sets one
 * string value, `POST /logout` destroys it.
 */
export function stateRoutes (app: FastifyInstance): void {
  app.get('/anon', async () => 'hello')
  app.get('/dump', async (req) => ({ data: req.session.data(), isNew: req.session.isNew, id: req.session.id }))
  app.post('/put', async (req) => {
    const { key, value } = req.query as { key: string, value: string }
    req.session.set(key, value)
    return { id: req.session.id }
  })
  app.post('/logout', async (req) => {
    await req.session.destroy()
    return 'bye'
  })
}

/**
 * The routes of the stores' plugin-level tests: `POST /login?user=` signs in, `GET /me` shows
 * who, `POST /increment` and `POST /set/:key` wait at `burst` so that concurrent requests all
 * load before any commits, `GET /dump` shows the data.
 */
export function storeRoutes (app: FastifyInstance, burst: Barrier): void {
  app.get('/anon', async () => 'hello')
  app.post('/login', async (req) => {
    req.session.set('user', (req.query as { user?: string }).user ?? 'ada')
    return { ok: true }
  })
  app.get('/me', async (req) => ({ user: req.session.get('user') ?? null }))
  app.post('/increment', async (req) => {
    await burst.wait()
    await req.session.update((s) => { s.set('counter', ((s.get('counter') as number | undefined) ?? 0) + 1) })
    return 'ok'
  })
  app.post('/set/:key', async (req) => {
    await burst.wait()
    req.session.set((req.params as { key: string }).key, true)
    return 'ok'
  })
  app.get('/dump', async (req) => req.session.data())
}

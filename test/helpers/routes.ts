import type { FastifyInstance } from 'fastify'

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

import t from 'tap'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { RedisStore } from '../../src/index'
import { build, sessionCookie } from '../helpers/app'
import { replyCode } from '../helpers/faulty-app'
import { Barrier } from '../helpers/gate'
import { failOnHang } from '../helpers/hang'
import { redisForTest } from '../helpers/redis-servers'

const TABS = 12

/** Every handler of one burst waits here, so all of them read the same copy before any commits. */
let barrier = new Barrier(TABS)

function cartRoutes (app: FastifyInstance): void {
  app.post('/start', async (req) => {
    req.session.set('cart', [])
    return 'ok'
  })
  app.get('/cart', async (req) => ({ cart: req.session.get('cart'), last: req.session.get('last') ?? null }))
  // Read, then change in place: the change is noticed and committed without set().
  app.post('/push', async (req) => {
    const cart = req.session.get('cart') as string[]
    await barrier.wait()
    cart.push((req.query as { item: string }).item)
    return 'ok'
  })
  // Writes without reading.
  app.post('/last', async (req) => {
    await barrier.wait()
    req.session.set('last', Number((req.query as { n: string }).n))
    return 'ok'
  })
  app.post('/add', async (req) => {
    const item = (req.query as { item: string }).item
    await barrier.wait()
    await req.session.update((s) => { s.set('cart', [...((s.get('cart') as string[] | undefined) ?? []), item]) })
    return 'ok'
  })
}

/** TABS requests to `url` at once on one session, each with its own item. */
async function burst (app: FastifyInstance, cookie: string, url: string, query: (i: number) => Record<string, string>): Promise<LightMyRequestResponse[]> {
  barrier = new Barrier(TABS)
  return Promise.all(Array.from({ length: TABS }, (_, i) => app.inject({ method: 'POST', url, query: query(i), headers: { cookie } })))
}

t.test('RedisStore, default merge policy: concurrent requests on one session', async (t) => {
  const client = await redisForTest(t)
  if (client === undefined) return
  const app = await build({ store: new RedisStore({ client }) }, cartRoutes)
  t.teardown(() => app.close())

  async function start (): Promise<string> {
    return sessionCookie(await app.inject({ method: 'POST', url: '/start' })) as string
  }
  async function read (cookie: string): Promise<{ cart: string[], last: number | null }> {
    return (await app.inject({ url: '/cart', headers: { cookie } })).json()
  }

  t.test('get() then push() in place: no item is lost silently; a lost race is a 409', async (t) => {
    failOnHang(t, 5000)
    const cookie = await start()
    const responses = await burst(app, cookie, '/push', (i) => ({ item: `item-${i}` }))
    const kept: string[] = []
    let conflicts = 0
    responses.forEach((res, i) => {
      if (res.statusCode === 200) kept.push(`item-${i}`)
      else if (res.statusCode === 409 && replyCode(res) === 'FST_SESS_CONFLICT') conflicts++
      else t.fail(`request ${i}: ${res.statusCode} ${res.body}`)
    })
    const { cart } = await read(cookie)
    t.same([...cart].sort(), [...kept].sort(), `the cart holds exactly the items of the ${kept.length} requests that answered 200`)
    t.ok(conflicts > 0 || kept.length === TABS, `${conflicts} conflict(s) reported, ${kept.length} kept`)
  })

  t.test('blind writes of one key stay last-write-wins', async (t) => {
    failOnHang(t, 5000)
    const cookie = await start()
    const responses = await burst(app, cookie, '/last', (i) => ({ n: String(i) }))
    t.same(responses.map((res) => res.statusCode), responses.map(() => 200), 'every request answers 200')
    const { last } = await read(cookie)
    t.ok(last !== null && last >= 0 && last < TABS, `one of the writes won: ${last}`)
  })

  t.test('the same cart built with update() keeps every item', async (t) => {
    failOnHang(t, 5000)
    const cookie = await start()
    const responses = await burst(app, cookie, '/add', (i) => ({ item: `item-${i}` }))
    t.same(responses.map((res) => res.statusCode), responses.map(() => 200), 'every request answers 200')
    const { cart } = await read(cookie)
    t.same([...cart].sort(), Array.from({ length: TABS }, (_, i) => `item-${i}`).sort())
  })
})

interface ExampleApp {
  buildApp (opts?: { secret?: string }): Promise<FastifyInstance>
  ITEMS: Record<string, string>
}

// The demo imports the package by name (the built dist/), so it is loaded with a real dynamic import.
const appUrl: string = pathToFileURL(resolve(__dirname, '..', '..', 'example', 'app.mjs')).href

t.test('the example app keeps every item added to the cart concurrently', async (t) => {
  failOnHang(t)
  const example = (await import(appUrl)) as ExampleApp
  const app = await example.buildApp({ secret: 'example-cart-secret-that-is-long-enough-0123' })
  t.teardown(() => app.close())
  // The demo's forms carry a CSRF token: the home page starts the session and gives one.
  const first = await app.inject({ url: '/' })
  const cookie = sessionCookie(first) as string
  t.ok(cookie, 'the home page starts a session')
  const token = /name="_csrf" value="([^"]+)"/.exec(first.body)?.[1] as string
  const add = (item: string): Promise<LightMyRequestResponse> => app.inject({
    method: 'POST',
    url: '/cart',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
    payload: new URLSearchParams({ item, _csrf: token }).toString()
  })
  t.equal((await add('apple')).statusCode, 303)
  const ids = Object.keys(example.ITEMS)
  const items = Array.from({ length: TABS }, (_, i) => ids[i % ids.length])
  const responses = await Promise.all(items.map((item) => add(item)))
  t.same(responses.map((res) => res.statusCode), responses.map(() => 303), 'every add answers with the redirect')
  const home = (await app.inject({ url: '/', headers: { cookie } })).body
  const shown = Object.fromEntries([...home.matchAll(/data-count="(\w+)">(\d+)</g)].map(([, id, n]) => [id, Number(n)]))
  const expected: Record<string, number> = Object.fromEntries(ids.map((id) => [id, id === 'apple' ? 1 : 0]))
  for (const item of items) expected[item] += 1
  t.same(shown, expected, `the cart shows all ${items.length + 1} items`)
})

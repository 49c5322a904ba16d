import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import t from 'tap'
import { storeKey } from '../src/crypto/ids'
import { RedisStore, type FastifySessionsOptions, type SessionRecord } from '../src/index'
import { build, OLD_SECRET, SECRET, sessionCookie } from './helpers/app'
import { redisForTest } from './helpers/redis-servers'
import { StoreSpy } from './helpers/store-spy'

const MODES = ['never', 'always', 'auto'] as const
const MARKER = 'card-4111-1111-1111-1111'
// Sealed text is base64url, so a quoted name or a phrase with a space can only be plaintext.
// Hundreds of KB: the sessions where the worker pool may pay.
const LARGE = 'lorem ipsum '.repeat(30_000)

function routes (app: FastifyInstance): void {
  app.get('/write', async (req) => {
    req.session.set('card', MARKER)
    req.session.set('notes', LARGE)
    return 'ok'
  })
  app.get('/read', async (req) => ({ card: req.session.get('card') ?? null, size: (req.session.get('notes') as string | undefined)?.length ?? 0 }))
  app.get('/logout', async (req) => { await req.session.destroy(); return 'bye' })
  app.get('/count', async (req) => {
    await req.session.update((s) => { s.set('n', ((s.get('n') as number | undefined) ?? 0) + 1) })
    return { n: req.session.get('n') }
  })
}

async function app (t: tap.Test, options: Partial<FastifySessionsOptions>): Promise<FastifyInstance> {
  // A record is sealed inside the write, which storeTimeout bounds (2 s by default). With
  // offload 'always' the first seal starts a worker thread, and under the tests' TypeScript
  // loader that alone can take longer on a busy machine.
  const built = await build({ encryptAtRest: true, storeTimeout: 60, ...options }, routes)
  t.teardown(() => built.close())
  return built
}

for (const offload of MODES) {
  t.test(`offload '${offload}': a dump of the store reveals nothing, and sessions still work`, async (t) => {
    const store = new StoreSpy()
    t.teardown(() => store.close())
    const server = await app(t, { store, crypto: { offload } })
    const written = await server.inject('/write')
    t.equal(written.statusCode, 200, 'stored')
    const cookie = sessionCookie(written)
    const dump = store.dump()
    t.equal(store.records.size, 1)
    t.notOk(dump.includes(MARKER), 'no plaintext value')
    t.notOk(dump.includes('lorem ipsum'), 'no plaintext in the large value either')
    t.notOk(dump.includes('"card"'), 'not even the key names')
    const [raw] = store.records.values()
    t.same(Object.keys(JSON.parse(raw).data), ['sealed'], 'the store sees one sealed field')
    t.same((await server.inject({ url: '/read', headers: { cookie } })).json(), { card: MARKER, size: LARGE.length })
    t.same((await server.inject({ url: '/count', headers: { cookie } })).json(), { n: 1 })
    t.same((await server.inject({ url: '/count', headers: { cookie } })).json(), { n: 2 })
    t.notOk(store.dump().includes(MARKER))
  })
}

t.test('records cannot be forged or moved by whoever can write to the store', async (t) => {
  const store = new StoreSpy()
  t.teardown(() => store.close())
  const server = await app(t, { store })
  const a = sessionCookie(await server.inject('/write')) as string
  const b = sessionCookie(await server.inject('/write')) as string
  const keyOf = (cookie: string): string => storeKey(cookie.slice(4, 47))
  const recordA = await store.inner.get(keyOf(a)) as SessionRecord
  // B's key now holds A's sealed data: it is bound to A's key and does not open.
  await store.inner.set(keyOf(b), { ...recordA, version: 2 }, 1)
  t.same((await server.inject({ url: '/read', headers: { cookie: b } })).json(), { card: null, size: 0 }, 'moved data is refused')
  // A plaintext record planted under A's key is refused too.
  await store.inner.set(keyOf(a), { ...recordA, data: { card: 'forged' }, version: 2 }, 1)
  t.same((await server.inject({ url: '/read', headers: { cookie: a } })).json(), { card: null, size: 0 }, 'plaintext is refused')
  const c = sessionCookie(await server.inject('/write')) as string
  await server.inject({ url: '/logout', headers: { cookie: c } })
  t.same((await server.inject({ url: '/read', headers: { cookie: c } })).json(), { card: null, size: 0 }, 'a destroyed record stays gone')
})

t.test('records sealed under an older secret open while it is listed', async (t) => {
  const store = new StoreSpy()
  t.teardown(() => store.close())
  const before = await app(t, { store, secret: OLD_SECRET })
  const cookie = sessionCookie(await before.inject('/write'))
  const rotated = await app(t, { store, secret: [SECRET, OLD_SECRET] })
  t.same((await rotated.inject({ url: '/read', headers: { cookie } })).json(), { card: MARKER, size: LARGE.length })
  const retired = await app(t, { store, secret: [SECRET] })
  t.same((await retired.inject({ url: '/read', headers: { cookie } })).json(), { card: null, size: 0 })
})

t.test('encryptAtRest on a real Redis: HGETALL shows no plaintext', async (t) => {
  // What Redis sees does not depend on where the AES ran: the offload modes are covered above.
  const client = await redisForTest(t)
  if (client === undefined) return
  const prefix = 'rest:'
  const server = await app(t, { store: new RedisStore({ client, prefix }) })
  const cookie = sessionCookie(await server.inject('/write'))
  const keys = await client.keys(`${prefix}*`)
  t.equal(keys.length, 1, 'one record')
  const hash = await client.hgetall(keys[0])
  const dump = Object.entries(hash).flat().join('\n')
  t.ok(dump.length > LARGE.length, 'the large value is stored')
  t.same([MARKER, 'lorem ipsum', '"card"'].filter((s) => dump.includes(s)), [], 'no plaintext in Redis')
  t.same((await server.inject({ url: '/read', headers: { cookie } })).json(), { card: MARKER, size: LARGE.length })
})

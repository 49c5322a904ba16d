import t from 'tap'
import { CookieSigner } from '../src/crypto/signer'
import { Sealer } from '../src/crypto/sealer'
import { CookieStore } from '../src/index'
import { RecentCookies } from '../src/recent-cookies'
import { build, sessionCookie } from './helpers/app'

t.test('RecentCookies keeps what fits in its budget, in two generations', async (t) => {
  const recent = new RecentCookies<number>(200, () => 10)
  const cookie = (c: string): string => c.repeat(30)
  recent.add(cookie('a'), 1)
  recent.add(cookie('b'), 2)
  t.equal(recent.size, 2, 'both fit in the young generation (100)')
  recent.add(cookie('c'), 3)
  t.equal(recent.size, 3, 'the young one was full: it became the old one')
  t.equal(recent.get(cookie('a')), 1, 'an old entry is still found, and moves to the young one')
  recent.add(cookie('d'), 4)
  t.equal(recent.get(cookie('b')), undefined, 'the oldest generation was dropped whole')
  t.same([cookie('a'), cookie('c'), cookie('d')].map((c) => recent.get(c)), [1, 3, 4])
  recent.add(cookie('d'), 9)
  t.equal(recent.get(cookie('d')), 4, 'a known cookie keeps its entry')
  recent.add('e'.repeat(101), 5)
  t.equal(recent.get('e'.repeat(101)), undefined, 'an entry larger than a generation is not kept')
  t.equal(recent.get('never seen'), undefined)
})

/** Counts calls to a prototype method while the test runs. */
function count<T extends object> (t: tap.Test, proto: T, method: keyof T & string): { calls: number } {
  const counter = { calls: 0 }
  const original = proto[method] as (...args: unknown[]) => unknown
  ;(proto as Record<string, unknown>)[method] = function (this: unknown, ...args: unknown[]) {
    counter.calls++
    return original.apply(this, args)
  }
  t.teardown(() => { (proto as Record<string, unknown>)[method] = original })
  return counter
}

const routes = (app: import('fastify').FastifyInstance): void => {
  app.get('/write', async (req) => { req.session.set('n', ((req.session.get('n') as number | undefined) ?? 0) + 1); return req.session.get('n') })
  app.get('/read', async (req) => req.session.get('n') ?? null)
}

t.test('a signed cookie is checked once: issued or verified, later requests skip the HMAC', async (t) => {
  const verify = count(t, CookieSigner.prototype, 'verify')
  const app = await build({}, routes)
  t.teardown(() => app.close())
  const cookie = sessionCookie(await app.inject('/write'))
  for (let i = 0; i < 3; i++) t.equal((await app.inject({ url: '/read', headers: { cookie } })).body, '1')
  t.equal(verify.calls, 0, 'a cookie this process issued is known')
  const other = await build({}, routes)
  t.teardown(() => other.close())
  const forged = `${cookie?.slice(0, -2)}xx`
  for (let i = 0; i < 3; i++) await other.inject({ url: '/read', headers: { cookie: forged } })
  t.equal(verify.calls, 3, 'a forged cookie is checked every time: it never gets in')
  await other.inject({ url: '/read', headers: { cookie } })
  await other.inject({ url: '/read', headers: { cookie } })
  t.equal(verify.calls, 4, 'a cookie issued elsewhere is checked once')
})

t.test('a sealed cookie is opened once, then later requests skip the AES', async (t) => {
  const unseal = count(t, Sealer.prototype, 'unseal')
  const unsealInline = count(t, Sealer.prototype, 'unsealInline')
  const app = await build({ store: new CookieStore() }, routes)
  t.teardown(() => app.close())
  const cookie = sessionCookie(await app.inject('/write'))
  for (let i = 0; i < 3; i++) t.equal((await app.inject({ url: '/read', headers: { cookie } })).body, '1')
  t.equal(unseal.calls + unsealInline.calls, 1, 'three requests, one opening')
  const other = await build({ store: new CookieStore() }, routes)
  t.teardown(() => other.close())
  for (let i = 0; i < 3; i++) t.equal((await other.inject({ url: '/read', headers: { cookie } })).body, '1')
  t.equal(unseal.calls + unsealInline.calls, 2, 'another process opens it once too')
  const forged = `${cookie?.slice(0, -2)}AA`
  for (let i = 0; i < 3; i++) await other.inject({ url: '/read', headers: { cookie: forged } })
  t.equal(unseal.calls + unsealInline.calls, 5, 'a forged cookie is tried every time: it never gets in')
})

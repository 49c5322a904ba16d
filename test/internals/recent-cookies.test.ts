import t from 'tap'
import { freshState, type Loaded, type SessionState } from '../../src/backends/backend'
import { CookieBackend } from '../../src/backends/cookie-backend'
import { StoreBackend } from '../../src/backends/store-backend'
import { newSessionId } from '../../src/crypto/ids'
import { Sealer } from '../../src/crypto/sealer'
import { CookieSigner } from '../../src/crypto/signer'
import { GuardedStore } from '../../src/guarded-store'
import { CookieStore, MemoryStore } from '../../src/index'
import type { MaybePromise } from '../../src/maybe-promise'
import { resolveOptions, type ResolvedOptions } from '../../src/options'
import { RecentCookies } from '../../src/recent-cookies'
import { SECRET } from '../helpers/app'

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

/** A signer that counts the HMAC checks it makes. */
function countingSigner (options: ResolvedOptions): { signer: CookieSigner, checks: { count: number } } {
  const real = new CookieSigner(options.secrets, options.cookieName)
  const checks = { count: 0 }
  const spy: Pick<CookieSigner, 'sign' | 'verify'> = {
    sign: (id) => real.sign(id),
    verify: (value) => { checks.count++; return real.verify(value) }
  }
  return { signer: spy as CookieSigner, checks }
}

/** A sealer that counts the cookies it opens, inline or not. */
function countingSealer (options: ResolvedOptions): { sealer: Sealer, openings: { count: number } } {
  const real = new Sealer({ secret: options.secrets })
  const openings = { count: 0 }
  const spy: Pick<Sealer, 'sealInline' | 'seal' | 'unsealInline' | 'unseal'> = {
    sealInline: (context, plaintext) => real.sealInline(context, plaintext),
    seal: (context, plaintext) => real.seal(context, plaintext),
    unsealInline: (context, sealed) => {
      const opened = real.unsealInline(context, sealed)
      if (opened !== undefined) openings.count++
      return opened
    },
    unseal: (context, sealed) => { openings.count++; return real.unseal(context, sealed) }
  }
  return { sealer: spy as Sealer, openings }
}

function newState (data: Record<string, unknown>): SessionState {
  const now = Date.now()
  return freshState(newSessionId(), data, now, now + 60_000)
}

/** The data of the session a cookie loads, or the reason it does not. */
async function loaded (load: MaybePromise<Loaded>): Promise<unknown> {
  const result = await load
  return result.ok ? result.state.data : result.reason
}

/**
 * The cookie with its last-but-one character changed: authentic no more. (The last one
 * of a base64url value may carry bits that decoding ignores.)
 */
function forge (cookie: string): string {
  const at = cookie.length - 2
  return cookie.slice(0, at) + (cookie[at] === 'A' ? 'B' : 'A') + cookie.slice(at + 1)
}

t.test('a signed cookie is checked once: issued or verified, later requests skip the HMAC', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const options = resolveOptions({ secret: SECRET, store })
  // Two registrations sharing a store, like two servers: each has its own recent cookies.
  const backend = (signer: CookieSigner): StoreBackend => new StoreBackend(options, new GuardedStore(store, 1000), signer, undefined)
  const one = countingSigner(options)
  const issuing = backend(one.signer)
  const state = newState({ n: 1 })
  t.equal(await issuing.compareAndSet(state, { ...state, version: 1 }, 0), true)
  const cookie = issuing.issue(state)
  for (let i = 0; i < 3; i++) t.same(await loaded(issuing.load(cookie)), { n: 1 })
  t.equal(one.checks.count, 0, 'a cookie this process issued is known')
  const two = countingSigner(options)
  const other = backend(two.signer)
  for (let i = 0; i < 3; i++) t.equal(await loaded(other.load(forge(cookie))), 'bad signature')
  t.equal(two.checks.count, 3, 'a forged cookie is checked every time: it never gets in')
  for (let i = 0; i < 2; i++) t.same(await loaded(other.load(cookie)), { n: 1 })
  t.equal(two.checks.count, 4, 'a cookie issued elsewhere is checked once')
})

t.test('a sealed cookie is opened once, then later requests skip the AES', async (t) => {
  const options = resolveOptions({ secret: SECRET, store: new CookieStore() })
  const one = countingSealer(options)
  const issuing = new CookieBackend(options, new CookieStore(), one.sealer)
  const cookie = await issuing.issue(newState({ n: 1 }))
  for (let i = 0; i < 3; i++) t.same(await loaded(issuing.load(cookie)), { n: 1 })
  t.equal(one.openings.count, 0, 'a cookie this process issued is known: no opening')
  const two = countingSealer(options)
  const other = new CookieBackend(options, new CookieStore(), two.sealer)
  for (let i = 0; i < 3; i++) t.same(await loaded(other.load(cookie)), { n: 1 })
  t.equal(two.openings.count, 1, 'another process opens it once too')
  for (let i = 0; i < 3; i++) t.equal(await loaded(other.load(forge(cookie))), 'authentication failed')
  t.equal(two.openings.count, 4, 'a forged cookie is tried every time: it never gets in')
})

t.test('an issued cookie that keeps coming back is decoded no more after its third return', async (t) => {
  const options = resolveOptions({ secret: SECRET, store: new CookieStore() })
  const store = new CookieStore()
  const decodes = { count: 0 }
  const codec: Pick<CookieStore, 'stateless' | 'maxCookieBytes' | 'encode' | 'decode'> = {
    stateless: true,
    maxCookieBytes: store.maxCookieBytes,
    encode: (session) => store.encode(session),
    decode: (payload) => { decodes.count++; return store.decode(payload) }
  }
  const { sealer, openings } = countingSealer(options)
  const backend = new CookieBackend(options, codec as CookieStore, sealer)
  const cookie = await backend.issue(newState({ n: 1 }))
  const data: unknown[] = []
  for (let i = 0; i < 6; i++) data.push(await loaded(backend.load(cookie)))
  t.same(data, Array(6).fill({ n: 1 }))
  t.equal(decodes.count, 3, 'decoded on its first three returns, then kept decoded')
  t.equal(openings.count, 0, 'never opened')
  const other = await backend.issue(newState({ list: [1, 2] }))
  for (let i = 0; i < 5; i++) t.same(await loaded(backend.load(other)), { list: [1, 2] })
  t.equal(decodes.count, 8, 'a session of more than primitives is decoded every time, as before')
})

import { setTimeout as sleep } from 'node:timers/promises'
import type { SessionRecord, SessionStore } from '../../src/store'

export interface ConformanceOptions {
  /** A fresh store for one sub-test. `close` defaults to the store's own close(). */
  make: () => Promise<{ store: SessionStore, close?: () => Promise<void> }>
  /**
   * Whose clock ends records. 'process': the store compares expiresAt with Date.now() in
   * this process, so the suite moves a fake clock. 'server': a server drops records on its
   * own clock, so the suite waits for real, the only real waits in the tests.
   */
  clock: 'process' | 'server'
  /**
   * Lifetime of the records the suite lets expire, in ms; on a server's clock it is waited
   * out. Default 1000: a write and a read fit in it on a busy machine. A server that counts
   * whole seconds (memcached) needs at least 2000.
   */
  shortTtlMs?: number
}

// How long past an expiry a server is given to drop the record.
const SERVER_MARGIN_MS = 250

let counter = 0
/** A store key shaped like the real ones (43 base64url characters), unique per call. */
export function uniqueKey (): string {
  const tag = `${process.pid}-${Date.now()}-${counter++}`
  return Buffer.from(tag).toString('base64url').padEnd(43, 'k').slice(0, 43)
}

export function record (data: Record<string, unknown>, version = 1, ttlMs = 60_000): SessionRecord {
  const now = Date.now()
  return { data, version, createdAt: now, expiresAt: now + ttlMs }
}

/** Lets `ms` pass for the store: on a fake clock at once, on a server's clock for real. */
type Elapse = (ms: number) => Promise<void>

function clockFor (t: tap.Test, clock: ConformanceOptions['clock']): Elapse {
  if (clock === 'server') return (ms) => sleep(ms + SERVER_MARGIN_MS)
  let now = Date.now()
  t.capture(Date, 'now', () => now)
  return async (ms) => { now += ms + 1 }
}

/**
 * The behaviour every SessionStore must show. A store's test file runs it in one call:
 * `storeConformance(t, 'MemoryStore', { make: async () => ({ store: new MemoryStore() }), clock: 'process' })`.
 */
export function storeConformance (t: tap.Test, name: string, options: ConformanceOptions): void {
  const shortTtl = options.shortTtlMs ?? 1000
  const check = (title: string, body: (t: tap.Test, store: SessionStore, elapse: Elapse) => Promise<void>): void => {
    t.test(`${name}: ${title}`, async (t) => {
      const elapse = clockFor(t, options.clock)
      const { store, close = async () => store.close?.() } = await options.make()
      t.teardown(close)
      await body(t, store, elapse)
    })
  }

  check('round trip keeps data, version and timestamps', async (t, store) => {
    const key = uniqueKey()
    const written = record({ user: 'ada', roles: ['admin'], nested: { n: 1, ok: true, none: null } })
    t.equal(await store.set(key, written, 0), true)
    t.same(await store.get(key), written)
  })

  check('a missing key reads as undefined', async (t, store) => {
    t.equal(await store.get(uniqueKey()), undefined)
  })

  check('records expire at expiresAt, and an expired record counts as missing', async (t, store, elapse) => {
    const key = uniqueKey()
    t.equal(await store.set(key, record({ a: 1 }, 1, shortTtl), 0), true)
    t.ok(await store.get(key), 'present before expiry')
    await elapse(shortTtl)
    t.equal(await store.get(key), undefined, 'gone after expiry')
    t.equal(await store.set(key, record({ a: 2 }, 1), 0), true, 'a create over an expired record succeeds')
    t.same((await store.get(key))?.data, { a: 2 })
  })

  check('touch moves the expiry of a live record only, keeps its data and never creates one', async (t, store, elapse) => {
    if (store.touch === undefined) {
      t.pass('store has no touch')
      return
    }
    const [kept, lapsed, missing] = [uniqueKey(), uniqueKey(), uniqueKey()]
    await store.set(kept, record({ a: 'kept' }, 1, shortTtl), 0)
    await store.set(lapsed, record({ a: 'lapsed' }, 1, shortTtl), 0)
    const later = Date.now() + 60_000
    t.equal(await store.touch(kept, later), true, 'a live record: true')
    t.equal(await store.touch(missing, later), false, 'a missing record: false')
    t.equal(await store.get(missing), undefined, 'touch never creates a record')
    await elapse(shortTtl)
    const read = await store.get(kept)
    t.same(read?.data, { a: 'kept' }, 'data survives past the old expiry')
    t.equal(read?.version, 1, 'version unchanged')
    t.equal(read?.expiresAt, later, 'new expiry stored')
    t.equal(await store.touch(lapsed, later), false, 'an expired record: false')
    t.equal(await store.get(lapsed), undefined, 'touch never brings an expired record back')
  })

  check('destroy removes a record and ignores a missing one', async (t, store) => {
    const key = uniqueKey()
    await store.set(key, record({ a: 1 }), 0)
    await store.destroy(key)
    t.equal(await store.get(key), undefined)
    await t.resolves(store.destroy(uniqueKey()))
  })

  check('compare-and-set refuses stale versions and changes nothing', async (t, store) => {
    const key = uniqueKey()
    t.equal(await store.set(key, record({ v: 1 }, 1), 0), true)
    t.equal(await store.set(key, record({ v: 'x' }, 1), 0), false, 'create over an existing record')
    t.equal(await store.set(key, record({ v: 'y' }, 3), 2), false, 'wrong expected version')
    t.same((await store.get(key))?.data, { v: 1 })
    t.equal(await store.set(key, record({ v: 2 }, 2), 1), true, 'right expected version')
    t.same(await store.get(key).then((r) => [r?.data, r?.version]), [{ v: 2 }, 2])
    t.equal(await store.set(key, record({ v: 'z' }, 2), 1), false, 'stale expected version')
    t.same(await store.get(key).then((r) => [r?.data, r?.version]), [{ v: 2 }, 2], 'a refused write changes nothing')
    await store.destroy(key)
    t.equal(await store.set(key, record({ v: 3 }, 3), 2), false, 'update of a destroyed record')
  })

  check('concurrent creators: exactly one wins', async (t, store) => {
    const key = uniqueKey()
    const results = await Promise.all(Array.from({ length: 25 }, (_, i) => store.set(key, record({ i }), 0)))
    t.equal(results.filter(Boolean).length, 1)
  })

  check('concurrent read-modify-write loops lose no increment', async (t, store) => {
    const key = uniqueKey()
    await store.set(key, record({ n: 0 }), 0)
    const increment = async (): Promise<void> => {
      for (;;) {
        const current = await store.get(key) as SessionRecord
        const next = { ...current, data: { n: (current.data.n as number) + 1 }, version: current.version + 1 }
        if (await store.set(key, next, current.version)) return
      }
    }
    await Promise.all(Array.from({ length: 30 }, increment))
    const final = await store.get(key)
    t.equal(final?.data.n, 30)
    t.equal(final?.version, 31)
  })

  check('large and unicode values survive', async (t, store) => {
    const key = uniqueKey()
    const data = {
      big: 'x'.repeat(200_000),
      unicode: 'héllo wörld — 日本語 — 😀👩‍👩‍👧 — \u0000 — \u2028',
      'ключ 🔑': { list: Array.from({ length: 500 }, (_, i) => ({ i, s: `§${i}` })) }
    }
    await store.set(key, record(data), 0)
    t.same((await store.get(key))?.data, data)
  })

  check('own __proto__ and constructor keys read back as data, touching no prototype', async (t, store) => {
    const key = uniqueKey()
    // JSON.parse makes own properties of these names, as a session value read from a form can hold.
    const json = '{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}},"nested":{"__proto__":[1]}}'
    await store.set(key, record(JSON.parse(json)), 0)
    const data = (await store.get(key))?.data as Record<string, unknown>
    t.equal(JSON.stringify(data), json, 'every key and value, in order')
    t.ok(Object.hasOwn(data, '__proto__'), '__proto__ is an own key')
    t.equal(Object.getPrototypeOf(data), Object.prototype, 'the prototype is untouched')
    t.ok(Object.hasOwn(data.nested as object, '__proto__'), 'at any depth')
    t.equal(({} as Record<string, unknown>).polluted, undefined, 'no prototype polluted')
  })

  check('keys are independent', async (t, store) => {
    const [a, b] = [uniqueKey(), uniqueKey()]
    await store.set(a, record({ who: 'a' }), 0)
    await store.set(b, record({ who: 'b' }), 0)
    await store.destroy(a)
    t.equal(await store.get(a), undefined)
    t.same((await store.get(b))?.data, { who: 'b' })
  })
}

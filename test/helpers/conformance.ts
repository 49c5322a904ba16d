import { setTimeout as sleep } from 'node:timers/promises'
import type { SessionRecord, SessionStore } from '../../src/store'

export interface ConformanceOptions {
  /** A fresh store for one sub-test, and how to dispose of it afterwards. */
  make: () => Promise<{ store: SessionStore, close?: () => Promise<void> }>
  /** Smallest lifetime the backend expires reliably, in ms (memcached counts whole seconds). */
  shortTtlMs?: number
}

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

/** The behaviour every SessionStore must show; each store's test file runs it. */
export function storeConformance (t: tap.Test, name: string, options: ConformanceOptions): void {
  const shortTtl = options.shortTtlMs ?? 100
  const check = (title: string, body: (t: tap.Test, store: SessionStore) => Promise<void>): void => {
    t.test(`${name}: ${title}`, async (t) => {
      const { store, close } = await options.make()
      t.teardown(async () => close?.())
      await body(t, store)
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

  check('records expire at expiresAt', async (t, store) => {
    const key = uniqueKey()
    t.equal(await store.set(key, record({ a: 1 }, 1, shortTtl), 0), true)
    t.ok(await store.get(key), 'present before expiry')
    await sleep(shortTtl + 250)
    t.equal(await store.get(key), undefined, 'gone after expiry')
  })

  check('touch moves the expiry and keeps the data', async (t, store) => {
    if (store.touch === undefined) {
      t.pass('store has no touch')
      return
    }
    const key = uniqueKey()
    const written = record({ a: 'kept' }, 1, shortTtl)
    await store.set(key, written, 0)
    const later = Date.now() + 60_000
    await store.touch(key, later)
    await sleep(shortTtl + 250)
    const read = await store.get(key)
    t.same(read?.data, { a: 'kept' }, 'data survives past the old expiry')
    t.equal(read?.version, 1, 'version unchanged')
    t.equal(read?.expiresAt, later, 'new expiry stored')
    const missing = uniqueKey()
    await store.touch(missing, later)
    t.equal(await store.get(missing), undefined, 'touch never creates a record')
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

  check('keys are independent', async (t, store) => {
    const [a, b] = [uniqueKey(), uniqueKey()]
    await store.set(a, record({ who: 'a' }), 0)
    await store.set(b, record({ who: 'b' }), 0)
    await store.destroy(a)
    t.equal(await store.get(a), undefined)
    t.same((await store.get(b))?.data, { who: 'b' })
  })
}

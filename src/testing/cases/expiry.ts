import { setTimeout as sleep } from 'node:timers/promises'
import type { Case } from '../case'
import { REAL_MARGIN_MS } from '../clock'
import { comparable, LIVE_MS, record } from '../record'
import { uniqueKey } from '../unique-key'

export const expiry: Case[] = [
  {
    title: 'an expired record is missing: get and touch miss it, set refuses its version and creates over it',
    async run ({ store, check, clock }) {
      const [read, touched, updated, created] = [uniqueKey(), uniqueKey(), uniqueKey(), uniqueKey()]
      for (const key of [read, touched, updated, created]) {
        check.equal(await store.set(key, record({ key }, { lifetimeMs: clock.lifetimeMs }), 0), true, 'set of a new short-lived record')
      }
      check.ok(await store.get(read) !== undefined, 'get before expiresAt to return the record')
      await clock.pass()
      check.equal(await store.get(read), undefined, 'get after expiresAt')
      if (store.touch !== undefined) {
        check.equal(await store.touch(touched, Date.now() + LIVE_MS), false, 'touch of an expired record')
        check.equal(await store.get(touched), undefined, 'get of an expired record after a touch')
      }
      check.equal(await store.set(updated, record({ again: true }, { version: 2 }), 1), false, 'set of an expired record with expectedVersion = its version 1')
      check.equal(await store.get(updated), undefined, 'get of an expired record after that set')
      const fresh = record({ fresh: true })
      check.equal(await store.set(created, fresh, 0), true, 'set with expectedVersion 0 over an expired record')
      check.same(comparable(await store.get(created)), fresh, 'get of the record created over an expired one')
    }
  }
]

/**
 * Under the fake clock every other case moves Date.now only; this one lets real time pass, so
 * a store that leaves expiry to its backend's TTL has that TTL exercised too.
 */
export function realExpiry (lifetimeMs: number): Case {
  return {
    title: 'a record expires for real',
    async run ({ store, check }) {
      const key = uniqueKey()
      check.equal(await store.set(key, record({ a: 1 }, { lifetimeMs }), 0), true, `set of a record living ${lifetimeMs} ms`)
      await sleep(lifetimeMs + REAL_MARGIN_MS)
      check.equal(await store.get(key), undefined, `get ${lifetimeMs + REAL_MARGIN_MS} ms later, by the real clock`)
    }
  }
}

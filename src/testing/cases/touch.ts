import type { Case } from '../case'
import { comparable, LIVE_MS, record } from '../record'
import { uniqueKey } from '../unique-key'

// A store without touch passes these: touch is optional.
export const touch: Case[] = [
  {
    title: 'touch moves the expiry only, either way: data, version and createdAt stay',
    async run ({ store, check, clock }) {
      if (store.touch === undefined) return
      const [kept, shortened] = [uniqueKey(), uniqueKey()]
      const written = record({ a: 'kept', list: [1, 2] }, { lifetimeMs: clock.lifetimeMs })
      await store.set(kept, written, 0)
      await store.set(shortened, record({ b: 1 }), 0)
      const later = Date.now() + LIVE_MS
      check.equal(await store.touch(kept, later), true, 'touch of a live record')
      const touched = { ...written, expiresAt: later }
      check.same(comparable(await store.get(kept)), touched, 'get after the touch')
      check.equal(await store.touch(shortened, Date.now() + clock.lifetimeMs), true, 'touch of a live record to an earlier expiry')
      await clock.pass()
      check.same(comparable(await store.get(kept)), touched, 'get of the touched record past its old expiresAt')
      check.equal(await store.get(shortened), undefined, 'get past the earlier expiry a touch set')
      const next = { ...touched, data: { a: 'next' }, version: 2 }
      check.equal(await store.set(kept, next, 1), true, 'set with the version written before the touch')
    }
  },
  {
    title: 'touch never creates a record, and reports a missing one',
    async run ({ store, check }) {
      if (store.touch === undefined) return
      const [never, destroyed] = [uniqueKey(), uniqueKey()]
      check.equal(await store.touch(never, Date.now() + LIVE_MS), false, 'touch of a key never written')
      check.equal(await store.get(never), undefined, 'get of a key never written after a touch')
      await store.set(destroyed, record({ a: 1 }), 0)
      await store.destroy(destroyed)
      check.equal(await store.touch(destroyed, Date.now() + LIVE_MS), false, 'touch of a destroyed key')
      check.equal(await store.get(destroyed), undefined, 'get of a destroyed key after a touch')
      check.equal(await store.set(never, record({ b: 1 }), 0), true, 'set with expectedVersion 0 of a key only touched')
    }
  }
]

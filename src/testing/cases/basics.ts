import type { Case } from '../case'
import { comparable, record } from '../record'
import { uniqueKey } from '../unique-key'

export const basics: Case[] = [
  {
    title: 'a record round-trips: data, version, createdAt and expiresAt',
    async run ({ store, check }) {
      const key = uniqueKey()
      const created = record({ name: 'ada', roles: ['admin'], empty: {}, nested: { n: 1.5, ok: true, none: null, list: [1, 'two', { three: 3 }] } })
      check.equal(await store.set(key, created, 0), true, 'set of a new key with expectedVersion 0')
      check.same(comparable(await store.get(key)), created, 'get after the create')
      const updated = { ...record({ name: 'ada', visits: 2 }, { version: 2 }), createdAt: created.createdAt }
      check.equal(await store.set(key, updated, 1), true, 'set with expectedVersion equal to the stored version')
      check.same(comparable(await store.get(key)), updated, 'get after the update')
    }
  },
  {
    title: 'a record round-trips its user, and a record without one reads back without one',
    async run ({ store, check }) {
      const [owned, anonymous, user] = [uniqueKey(), uniqueKey(), uniqueKey()]
      const written = record({ a: 1 }, { user })
      check.equal(await store.set(owned, written, 0), true, 'set of a record with a user')
      check.same(comparable(await store.get(owned)), written, 'get of a record written with a user')
      const plain = record({ b: 2 })
      await store.set(anonymous, plain, 0)
      check.same(comparable(await store.get(anonymous)), plain, 'get of a record written without a user')
    }
  },
  {
    title: 'a key never written reads as missing',
    async run ({ store, check }) {
      check.equal(await store.get(uniqueKey()), undefined, 'get of a key never written')
    }
  },
  {
    title: 'destroy removes a record, and destroying a missing key resolves',
    async run ({ store, check }) {
      const key = uniqueKey()
      await store.set(key, record({ a: 1 }), 0)
      await store.destroy(key)
      check.equal(await store.get(key), undefined, 'get of a destroyed key')
      await store.destroy(key)
      await store.destroy(uniqueKey())
      const again = record({ again: true })
      check.equal(await store.set(key, again, 0), true, 'set with expectedVersion 0 of a destroyed key')
      check.same(comparable(await store.get(key)), again, 'get of the key created again')
    }
  },
  {
    title: 'keys are independent: writing, touching and destroying one leaves another alone',
    async run ({ store, check }) {
      const [changed, bystander] = [uniqueKey(), uniqueKey()]
      const kept = record({ who: 'bystander' })
      await store.set(changed, record({ who: 'changed' }), 0)
      await store.set(bystander, kept, 0)
      await store.set(changed, record({ who: 'changed', step: 2 }, { version: 2 }), 1)
      await store.touch?.(changed, Date.now() + 1000)
      await store.destroy(changed)
      check.same(comparable(await store.get(bystander)), kept, 'get of the other key')
    }
  }
]

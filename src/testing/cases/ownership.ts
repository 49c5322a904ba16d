import type { Case } from '../case'
import { comparable, record } from '../record'
import { uniqueKey } from '../unique-key'
import type { SessionRecord } from '../../store'

interface Nested {
  list: unknown[]
  deep: { flag: boolean }
}

function sample (): SessionRecord {
  return record({ name: 'ada', nested: { list: [1, 2], deep: { flag: true } } })
}

function nestedOf (read: SessionRecord | undefined): Nested {
  return read?.data.nested as Nested
}

export const ownership: Case[] = [
  {
    title: 'get returns objects the caller owns: changing them, nested parts too, changes nothing stored',
    async run ({ store, check }) {
      const key = uniqueKey()
      const written = sample()
      const expected = structuredClone(written)
      await store.set(key, written, 0)
      const read = await store.get(key) as SessionRecord
      read.data.name = 'eve'
      read.data.added = true
      nestedOf(read).list.push(3)
      nestedOf(read).deep.flag = false
      Object.assign(read, { version: 99, createdAt: 0, expiresAt: 0 })
      check.same(comparable(await store.get(key)), expected, 'get after changing what an earlier get returned')
    }
  },
  {
    title: 'two gets, one after the other or at once, return distinct objects',
    async run ({ store, check }) {
      const key = uniqueKey()
      await store.set(key, sample(), 0)
      const pairs = [[await store.get(key), await store.get(key)], await Promise.all([store.get(key), store.get(key)])]
      for (const [a, b] of pairs) {
        check.ok(a !== b && a?.data !== b?.data, 'two gets to return two record objects with two data objects')
        check.ok(nestedOf(a) !== nestedOf(b) && nestedOf(a).deep !== nestedOf(b).deep, 'two gets to return distinct nested objects')
      }
    }
  },
  {
    title: 'set keeps no part of the record it was given: changing it afterwards changes nothing stored',
    async run ({ store, check }) {
      const key = uniqueKey()
      const created = sample()
      const expectedCreated = structuredClone(created)
      await store.set(key, created, 0)
      nestedOf(created).list.push('later')
      created.data.added = true
      Object.assign(created, { version: 7, expiresAt: 0 })
      check.same(comparable(await store.get(key)), expectedCreated, 'get after changing the record given to a create')
      const updated = { ...sample(), version: 2 }
      const expectedUpdated = structuredClone(updated)
      await store.set(key, updated, 1)
      nestedOf(updated).deep.flag = false
      check.same(comparable(await store.get(key)), expectedUpdated, 'get after changing the record given to an update')
    }
  }
]

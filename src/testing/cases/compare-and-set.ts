import type { Case } from '../case'
import { comparable, record } from '../record'
import { uniqueKey } from '../unique-key'
import type { SessionRecord } from '../../store'

const CREATORS = 25
const WRITERS = 30
// A writer loses a round only to another writer's success, so on a correct store none needs
// more than WRITERS attempts; the bound turns a store that refuses every update into a
// failure instead of a loop without end.
const MAX_ATTEMPTS = WRITERS * 4

export const compareAndSet: Case[] = [
  {
    title: `of ${CREATORS} concurrent creates of one key exactly one succeeds`,
    async run ({ store, check }) {
      const key = uniqueKey()
      const attempts = Array.from({ length: CREATORS }, (_, writer) => record({ writer }))
      const results = await Promise.all(attempts.map((attempt) => store.set(key, attempt, 0)))
      const winners = attempts.filter((_, i) => results[i])
      check.equal(winners.length, 1, `number of the ${CREATORS} concurrent creates that resolved true`)
      check.same(comparable(await store.get(key)), winners[0], 'the record stored: the winner\'s')
    }
  },
  {
    title: 'compare-and-set refuses a wrong or stale expected version, and a refused set changes nothing',
    async run ({ store, check }) {
      const key = uniqueKey()
      const first = record({ v: 1 })
      await store.set(key, first, 0)
      check.equal(await store.set(key, record({ v: 'x' }), 0), false, 'set with expectedVersion 0 over a live record')
      check.equal(await store.set(key, record({ v: 'y' }, { version: 3 }), 2), false, 'set with expectedVersion 2 while 1 is stored')
      check.same(comparable(await store.get(key)), first, 'get after the refused sets')
      const second = record({ v: 2 }, { version: 2 })
      check.equal(await store.set(key, second, 1), true, 'set with the stored version 1')
      check.equal(await store.set(key, record({ v: 'z' }, { version: 2 }), 1), false, 'set with the stale expectedVersion 1 after the update to 2')
      check.same(comparable(await store.get(key)), second, 'get after the refused stale set')
      await store.destroy(key)
      check.equal(await store.set(key, record({ v: 3 }, { version: 3 }), 2), false, 'set with expectedVersion 2 of a destroyed record')
      check.equal(await store.get(key), undefined, 'get of the destroyed key after the refused update')
    }
  },
  {
    title: `${WRITERS} concurrent read-modify-write writers on one key lose no update`,
    async run ({ store, check }) {
      const key = uniqueKey()
      await store.set(key, record({ n: 0 }), 0)
      const increment = async (): Promise<void> => {
        for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
          const current = await store.get(key) as SessionRecord
          const next = { ...current, data: { n: (current.data.n as number) + 1 }, version: current.version + 1 }
          if (await store.set(key, next, current.version)) return
        }
        check.fail(`a writer gave up after ${MAX_ATTEMPTS} refused sets; expected one to succeed once no other writer had written since its get`)
      }
      await Promise.all(Array.from({ length: WRITERS }, increment))
      const final = await store.get(key)
      check.same([final?.data.n, final?.version], [WRITERS, WRITERS + 1], `[n, version] after ${WRITERS} increments from [0, 1]`)
    }
  }
]

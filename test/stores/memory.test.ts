import t from 'tap'
import { MemoryStore } from '../../src/index'
import { conformance } from '../../src/testing'
import { record, uniqueKey } from '../helpers/record'

conformance({ test: (name, fn) => t.test(name, fn), store: () => new MemoryStore(), name: 'MemoryStore' })

/** Holds the timers MemoryStore starts, so a test runs its sweep when it chooses. */
function heldIntervals (t: tap.Test): { started: Array<{ run: () => void, ms: number, timer: object }>, cleared: unknown[] } {
  const started: Array<{ run: () => void, ms: number, timer: object }> = []
  const cleared: unknown[] = []
  t.capture(globalThis, 'setInterval', ((run: () => void, ms: number) => {
    const timer = { unref: () => timer }
    started.push({ run, ms, timer })
    return timer
  }) as unknown as typeof setInterval)
  t.capture(globalThis, 'clearInterval', ((timer: unknown) => { cleared.push(timer) }) as typeof clearInterval)
  return { started, cleared }
}

t.test('evicts the least recently used record past max', async (t) => {
  const store = new MemoryStore({ max: 3 })
  t.teardown(() => store.close())
  const keys = [uniqueKey(), uniqueKey(), uniqueKey(), uniqueKey()]
  for (const key of keys.slice(0, 3)) await store.set(key, record({ key }), 0)
  await store.get(keys[0])
  await store.set(keys[3], record({}), 0)
  t.equal(store.size, 3)
  t.equal(await store.get(keys[1]), undefined, 'least recently used went first')
  t.ok(await store.get(keys[0]), 'recently read survives')
})

t.test('a full large store evicts the least recently used 1% at once', async (t) => {
  const store = new MemoryStore({ max: 1000 })
  t.teardown(() => store.close())
  const keys = Array.from({ length: 1001 }, () => uniqueKey())
  for (const key of keys.slice(0, 1000)) await store.set(key, record({}), 0)
  await store.get(keys[0])
  t.equal(store.size, 1000)
  await store.set(keys[1000], record({}), 0)
  t.equal(store.size, 990, 'one over: the 11 least recently used went')
  t.equal(await store.get(keys[1]), undefined)
  t.equal(await store.get(keys[11]), undefined)
  t.ok(await store.get(keys[12]), 'the next one stays')
  t.ok(await store.get(keys[0]), 'recently read survives')
  t.ok(await store.get(keys[1000]), 'the newest survives')
})

t.test('sweeps expired records in the background, every sweepInterval seconds', async (t) => {
  let now = 1_700_000_000_000
  t.capture(Date, 'now', () => now)
  const { started } = heldIntervals(t)
  const store = new MemoryStore({ sweepInterval: 0.02 })
  t.teardown(() => store.close())
  t.same(started.map((s) => s.ms), [20], 'one timer, in milliseconds')
  await store.set(uniqueKey(), record({}, 1, 10), 0)
  await store.set(uniqueKey(), record({}, 1, 60_000), 0)
  started[0].run()
  t.equal(store.size, 2, 'nothing expired yet')
  now += 10
  started[0].run()
  t.equal(store.size, 1, 'the expired record is swept without being read')
})

t.test('stored data is a copy, not shared', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const key = uniqueKey()
  const data = { list: [1] }
  await store.set(key, record(data), 0)
  data.list.push(2)
  const read = await store.get(key)
  t.same(read?.data, { list: [1] })
})

t.test('rejects bad options by name', async (t) => {
  t.throws(() => new MemoryStore({ max: 0 }), { code: 'FST_SESS_INVALID_OPTION', message: /max/ })
  t.throws(() => new MemoryStore({ sweepInterval: -1 }), { code: 'FST_SESS_INVALID_OPTION', message: /sweepInterval/ })
})

t.test('close stops the sweep and empties the store', async (t) => {
  const { started, cleared } = heldIntervals(t)
  const store = new MemoryStore()
  await store.set(uniqueKey(), record({}), 0)
  await store.close()
  t.equal(store.size, 0)
  t.same(cleared, started.map((s) => s.timer), 'the sweep timer is cleared')
})

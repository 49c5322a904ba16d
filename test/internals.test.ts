import t from 'tap'
import { ChangeLog } from '../src/changes'
import { MAX_ATTEMPTS, retry, writeRecord } from '../src/commit'
import { createContext } from '../src/context'
import { StoreUnavailableError } from '../src/errors'
import { resolveOptions } from '../src/options'
import { KeyedQueue } from '../src/queue'
import type { SessionRecord, SessionStore } from '../src/store'
import { SECRET } from './helpers/app'

function contextWith (store: SessionStore) {
  return createContext(resolveOptions({ secret: SECRET, store }), () => {})
}

t.test('retry gives up after MAX_ATTEMPTS with a conflict', async (t) => {
  let calls = 0
  await t.rejects(retry(async () => { calls++; return false }), { code: 'FST_SESS_CONFLICT', message: /gave up/ })
  t.equal(calls, MAX_ATTEMPTS)
})

t.test('a commit that never wins its compare-and-set gives up with a conflict', async (t) => {
  let version = 1
  const store: SessionStore = {
    // Another writer always gets in first.
    get: async () => ({ data: {}, version: ++version, createdAt: Date.now(), expiresAt: Date.now() + 1000 }),
    set: async () => false,
    destroy: async () => {}
  }
  for (const policy of ['merge', 'overwrite'] as const) {
    const ctx = contextWith(store)
    const pending = { key: 'k', data: { a: 1 }, version: 1, createdAt: Date.now(), log: new ChangeLog(), policy }
    await t.rejects(writeRecord(ctx, pending), { code: 'FST_SESS_CONFLICT', message: /gave up after/ }, policy)
  }
})

t.test('a new session whose first write conflicts with a vanished record retries', async (t) => {
  let sets = 0
  const written: SessionRecord[] = []
  const store: SessionStore = {
    get: async () => undefined,
    set: async (_k, record) => { sets++; if (sets === 1) return false; written.push(record); return true },
    destroy: async () => {}
  }
  const ctx = contextWith(store)
  const record = await writeRecord(ctx, { key: 'k', data: { a: 1 }, version: 0, createdAt: Date.now(), log: new ChangeLog(), policy: 'merge' })
  t.equal(record.version, 1)
  t.equal(sets, 2)
})

t.test('the keyed queue runs tasks of one key in order and forgets idle keys', async (t) => {
  const queue = new KeyedQueue()
  const order: number[] = []
  const slow = queue.run('a', async () => { await new Promise((resolve) => setTimeout(resolve, 10)); order.push(1) })
  const failing = queue.run('a', async () => { order.push(2); throw new Error('boom') })
  const after = queue.run('a', async () => { order.push(3) })
  t.equal(queue.size, 1)
  await slow
  await t.rejects(failing, /boom/)
  await after
  t.same(order, [1, 2, 3], 'a failed task does not stop the next one')
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(queue.size, 0)
})

t.test('store failures of any shape become FST_SESS_STORE_UNAVAILABLE', async (t) => {
  const original = new StoreUnavailableError('already wrapped')
  const store: SessionStore = {
    get: async () => { throw 'a string' }, // eslint-disable-line no-throw-literal
    set: async () => { throw original },
    destroy: async () => {}
  }
  const ctx = contextWith(store)
  await t.rejects(ctx.store.get('k'), { code: 'FST_SESS_STORE_UNAVAILABLE', message: /a string/ })
  await t.rejects(ctx.store.set('k', { data: {}, version: 1, createdAt: 0, expiresAt: 1 }, 0), original)
  t.equal(ctx.store.touch, undefined, 'no touch when the store has none')
})

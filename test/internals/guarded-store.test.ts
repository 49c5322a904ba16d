import t from 'tap'
import { StoreUnavailableError, UnusableRecordError } from '../../src/errors'
import { GuardedStore } from '../../src/guarded-store'
import { KeyedQueue } from '../../src/keyed-queue'
import type { SessionRecord } from '../../src/store'
import { StoreSpy } from '../helpers/store-spy'

const record = (): SessionRecord => ({ data: { a: 1 }, version: 1, createdAt: Date.now(), expiresAt: Date.now() + 60_000 })

t.test('the keyed queue runs tasks of one key in order and forgets idle keys', async (t) => {
  const queue = new KeyedQueue()
  const order: number[] = []
  let release = (): void => {}
  const slow = queue.run('a', async () => { await new Promise<void>((resolve) => { release = resolve }); order.push(1) })
  const failing = queue.run('a', async () => { order.push(2); throw new Error('boom') })
  const after = queue.run('a', () => { order.push(3) })
  const sync = queue.run('b', () => { throw new Error('at once') })
  t.equal(queue.size, 2)
  release()
  await slow
  await t.rejects(failing, /boom/)
  await after
  await t.rejects(sync, /at once/, 'a task that throws becomes a rejection')
  t.same(order, [1, 2, 3], 'a failed task does not stop the next one')
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(queue.size, 0)
})

t.test('store failures of any shape become FST_SESS_STORE_UNAVAILABLE, with the cause kept', async (t) => {
  const original = new StoreUnavailableError('write', 'failed')
  const store = new StoreSpy({ touch: false, faults: { get: { reject: 'a string' }, set: { reject: original }, destroy: 'throw' } })
  t.teardown(() => store.close())
  const guarded = new GuardedStore(store, 1000)
  await t.rejects(guarded.get('k'), { code: 'FST_SESS_STORE_UNAVAILABLE', message: /read failed/, cause: 'a string' })
  await t.rejects(guarded.set('k', record(), 0), original)
  await t.rejects(guarded.destroy('k'), { code: 'FST_SESS_STORE_UNAVAILABLE', message: /delete failed/ })
  t.equal(await guarded.touch('k', Date.now()), false, 'without touch, a failed read means the session cannot be confirmed')
})

t.test('every call is bounded, and a call that never settles does not hold up later ones', async (t) => {
  const store = new StoreSpy({ faults: { get: 'hang', set: 'hang', destroy: 'hang', touch: 'hang' } })
  t.teardown(() => store.close())
  const guarded = new GuardedStore(store, 50)
  await t.rejects(guarded.get('k'), { code: 'FST_SESS_STORE_UNAVAILABLE', message: /read timed out after 0.05 s/ })
  await t.rejects(guarded.touch('k', 1), { code: 'FST_SESS_STORE_UNAVAILABLE', message: /touch timed out/ })
  const stuck = guarded.exclusive('k', 'write', () => guarded.set('k', record(), 0))
  let ran = false
  const queued = guarded.exclusive('k', 'write', async () => { ran = true })
  await t.rejects(stuck, { message: /timed out/ })
  await t.rejects(queued, { message: /write timed out/ }, 'the wait in the queue counts')
  t.notOk(ran, 'a task whose request gave up never starts')
  store.heal()
  t.equal(await guarded.exclusive('k', 'write', () => guarded.set('k', record(), 0)), true, 'the next write goes through')
  t.equal(await guarded.touch('k', Date.now() + 1000), true)
})

t.test('records the plugin cannot use are told apart from store failures', async (t) => {
  const shapes: unknown[] = [
    null, 'text', { version: 1, createdAt: 1, expiresAt: 2 }, { data: [], version: 1, createdAt: 1, expiresAt: 2 },
    { data: {}, version: 0, createdAt: 1, expiresAt: 2 }, { data: {}, version: 1.5, createdAt: 1, expiresAt: 2 },
    { data: {}, version: 1, createdAt: '1', expiresAt: 2 }
  ]
  for (const shape of shapes) {
    const store = new StoreSpy({ faults: { get: { resolve: shape } } })
    t.teardown(() => store.close())
    const guarded = new GuardedStore(store, 1000)
    await t.rejects(guarded.get('k'), UnusableRecordError, JSON.stringify(shape))
  }
  const failing = new StoreSpy({ faults: { get: { reject: new UnusableRecordError('bad bytes') } } })
  t.teardown(() => failing.close())
  const thrown = new GuardedStore(failing, 1000)
  await t.rejects(thrown.get('k'), { code: 'FST_SESS_UNUSABLE_RECORD', message: /bad bytes/ })
})

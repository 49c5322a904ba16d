import t from 'tap'
import type { Backend, SessionState } from '../../src/backends/backend'
import { ChangeLog } from '../../src/change-log'
import { resolveOptions } from '../../src/options'
import type { SessionRecord } from '../../src/store'
import { MAX_ATTEMPTS, writeRecord, type Backoff } from '../../src/write-record'
import { SECRET } from '../helpers/app'
import { fakeBackend } from '../helpers/fake-backend'

const options = resolveOptions({ secret: SECRET })

/** A backend whose compare-and-set and read are the test's. */
function backendWith (compareAndSet: Backend['compareAndSet'], read: Backend['read']): Backend {
  return fakeBackend({ compareAndSet, read })
}

function state (version: number, data: Record<string, unknown> = { a: 1 }): SessionState {
  return { id: 'id', key: 'k', data, version, createdAt: Date.now(), expiresAt: Date.now() + 1000, cookie: undefined, payload: undefined }
}

/** Counts the waits between attempts instead of waiting. */
function countingBackoff (): { backoff: Backoff, waits: number[] } {
  const waits: number[] = []
  return { waits, backoff: async (attempt) => { waits.push(attempt) } }
}

t.test('a commit that never wins its compare-and-set gives up with a conflict after MAX_ATTEMPTS', async (t) => {
  for (const policy of ['merge', 'overwrite'] as const) {
    let version = 1
    let attempts = 0
    // Another writer always gets in first.
    const backend = backendWith(async () => { attempts++; return false }, async () => ({ data: {}, version: ++version, createdAt: Date.now(), expiresAt: Date.now() + 1000 }))
    const { backoff, waits } = countingBackoff()
    await t.rejects(async () => writeRecord({ backend, options, backoff }, state(1), new ChangeLog(), policy), { code: 'FST_SESS_CONFLICT', message: /gave up after/ }, policy)
    t.equal(attempts, MAX_ATTEMPTS, `${policy}: every attempt was made`)
    t.same(waits, Array.from({ length: MAX_ATTEMPTS }, (_, i) => i), `${policy}: backed off between attempts`)
  }
})

t.test("'error' gives up at the first conflict, without reading", async (t) => {
  let reads = 0
  const backend = backendWith(async () => false, async () => { reads++; return undefined })
  await t.rejects(async () => writeRecord({ backend, options, backoff: async () => {} }, state(1), new ChangeLog(), 'error'), { code: 'FST_SESS_CONFLICT' })
  t.equal(reads, 0)
})

t.test('a new session whose first write conflicts with a vanished record retries', async (t) => {
  let sets = 0
  const written: SessionRecord[] = []
  const backend = backendWith(async (_s, record) => { sets++; if (sets === 1) return false; written.push(record); return true }, async () => undefined)
  const record = await writeRecord({ backend, options, backoff: async () => {} }, state(0), new ChangeLog(), 'merge')
  t.equal(record.version, 1)
  t.equal(sets, 2)
  t.same(written[0].data, { a: 1 })
})

t.test('a stored session that vanished meanwhile is never written again', async (t) => {
  let sets = 0
  const backend = backendWith(async () => { sets++; return false }, async () => undefined)
  await t.rejects(async () => writeRecord({ backend, options, backoff: async () => {} }, state(3), new ChangeLog(), 'overwrite'), { code: 'FST_SESS_CONFLICT', message: /destroyed or regenerated/ })
  t.equal(sets, 1)
})

t.test('merge replays blind writes onto the newer copy, and refuses a key read, changed and changed meanwhile', async (t) => {
  const latest = { data: { a: 2, b: 'theirs' }, version: 5, createdAt: Date.now(), expiresAt: Date.now() + 1000 }
  const stored: SessionRecord[] = []
  const backend = backendWith(async (_s, record, expected) => {
    if (expected !== latest.version) return false
    stored.push(record)
    return true
  }, async () => structuredClone(latest))

  const blind = new ChangeLog()
  blind.set('c', 'mine')
  const record = await writeRecord({ backend, options, backoff: async () => {} }, state(4, { a: 1, c: 'mine' }), blind, 'merge')
  t.same(record.data, { a: 2, b: 'theirs', c: 'mine' }, "the other writer's keys stay, this request's key is added")
  t.equal(record.version, 6)

  const read = new ChangeLog()
  read.read({ a: 1 }, 'a')
  read.set('a', 10)
  await t.rejects(async () => writeRecord({ backend, options, backoff: async () => {} }, state(4, { a: 10 }), read, 'merge'), { code: 'FST_SESS_CONFLICT', message: /read and changed/ })
  t.equal(stored.length, 1, 'the conflicting write stored nothing')
})

import t from 'tap'
import { GuardedStore } from '../../src/guarded-store'
import { Revocations, Stamps } from '../../src/revocations'
import type { SessionStore } from '../../src/store'
import { MemoryStore } from '../../src/stores/memory'
import { UserDigest } from '../../src/user-digest'
import { SECRET } from '../helpers/app'

const DAY = 86_400_000

function stampsOver (store: SessionStore, cacheMs = 0): Stamps {
  return new Stamps(new GuardedStore(store, 1000), DAY, cacheMs)
}

t.test('a stamp is raised, never lowered', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const stamps = stampsOver(store)
  const now = Date.now()
  await stamps.stamp('u', now)
  await stamps.stamp('u', now - 1000)
  t.equal(await stamps.before('u'), now)
  await stamps.stamp('u', now + 1000)
  t.equal(await stamps.before('u'), now + 1000)
  t.equal(await stamps.before('nobody'), 0)
})

t.test('a stamp that keeps losing its compare-and-set gives up with a conflict', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  let writes = 0
  const losing: SessionStore = { get: (key) => store.get(key), set: async () => { writes++; return false }, destroy: (key) => store.destroy(key) }
  await t.rejects(stampsOver(losing).stamp('u', 1000), { code: 'FST_SESS_CONFLICT', message: /revocation stamp changed 10 times/ })
  t.equal(writes, 10)
})

t.test('a stamp record that holds no number counts as no stamp', async (t) => {
  const odd: SessionStore = {
    get: async () => ({ data: { before: 'soon' }, version: 1, createdAt: 0, expiresAt: Date.now() + DAY }),
    set: async () => true,
    destroy: async () => {}
  }
  t.equal(await stampsOver(odd).before('u'), 0)
})

t.test('lookups of one user at the same moment share one read; a cache answers later ones', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  let reads = 0
  const counted: SessionStore = { get: (key) => { reads++; return store.get(key) }, set: (k, r, v) => store.set(k, r, v), destroy: (key) => store.destroy(key) }
  const uncached = stampsOver(counted)
  const [a, b] = await Promise.all([uncached.before('u'), uncached.before('u')])
  t.same([a, b, reads], [0, 0, 1])
  await uncached.before('u')
  t.equal(reads, 2, 'no cache: the next lookup reads again')
  await uncached.before('u', true)
  t.equal(reads, 3, 'fresh reads are never shared or cached')

  reads = 0
  const cached = stampsOver(counted, 60_000)
  await cached.before('u')
  t.equal(await cached.before('u'), 0)
  t.equal(reads, 1, 'answered from the cache')
  for (let i = 0; i < 10_001; i++) await cached.before(`user${i}`)
  reads = 0
  await cached.before('u')
  t.equal(reads, 1, 'a full cache starts over')
})

t.test('a failing stamp read is not shared with later lookups', async (t) => {
  let fail = true
  const flaky: SessionStore = { get: async () => { if (fail) throw new Error('down'); return undefined }, set: async () => true, destroy: async () => {} }
  const stamps = stampsOver(flaky)
  await t.rejects(Promise.resolve(stamps.before('u')), { code: 'FST_SESS_STORE_UNAVAILABLE' })
  fail = false
  t.equal(await stamps.before('u'), 0)
})

t.test('user digests: numbers, strings and bigints name users; the memo is bounded', async (t) => {
  const digest = new UserDigest([SECRET], 'id')
  t.equal(digest.of({ id: 42 }), digest.of({ id: '42' }))
  t.equal(digest.of({ id: 42n }), digest.of({ id: '42' }))
  t.equal(digest.of({}), undefined)
  t.equal(digest.of({ id: null }), undefined)
  t.throws(() => digest.of({ id: Infinity }), { code: 'FST_SESS_INVALID_USER' })
  const first = digest.of({ id: 'first' })
  for (let i = 0; i < 1000; i++) digest.of({ id: `user${i}` })
  t.equal(digest.of({ id: 'first' }), first, 'the same digest after the memo was cleared')
  t.same(digest.all('first'), [first])
})

t.test('without a user there is nothing to check', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const revocations = new Revocations({ idleMs: DAY, users: new UserDigest([SECRET], 'id') }, undefined, stampsOver(store))
  t.equal(revocations.revoked({ user: undefined, createdAt: 0 }), false)
  t.equal(await revocations.revoked({ user: 'u', createdAt: 1 }), false, 'no stamp: nothing revoked')
})

import t from 'tap'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { Cluster, Redis } from 'ioredis'
import { RedisStore, type SessionRecord } from '../../src/index'
import { revocationScenarios } from '../helpers/logout-everywhere'
import { uniqueKey } from '../helpers/record'
import { redisUnavailable, startCluster, startSentinel, startStandalone, waitFor } from '../helpers/redis-servers'

// RedisStore's per-user index on real servers: what listUser and destroyUser answer, how the
// sets expire, and the order of writes that keeps every record filed on a Cluster, where the
// record and its user's set live in different slots.

const HOST = '127.0.0.1'

type Client = Redis | Cluster
type Call = (...args: Array<string | number>) => Promise<unknown>

interface Topology {
  name: string
  cluster: boolean
  /** A new client, disconnected when the test ends. */
  connect (t: tap.Test): Client
}

interface Setup {
  store: RedisStore
  prefix: string
  /** A client of its own, to look at what the store wrote. */
  admin: Client
}

let sequence = 0

/** Each test writes under a prefix of its own. */
function nextPrefix (topology: Topology): string {
  return `users:${process.pid}:${topology.name}:${sequence++}:`
}

function setup (t: tap.Test, topology: Topology): Setup {
  const prefix = nextPrefix(topology)
  return { store: new RedisStore({ client: topology.connect(t), prefix }), prefix, admin: topology.connect(t) }
}

/** A record of `user` (or of nobody) created now. */
function filed (data: Record<string, unknown>, user: string | undefined, version = 1, ttlMs = 60_000): SessionRecord {
  const now = Date.now()
  const written: SessionRecord = { data, version, createdAt: now, expiresAt: now + ttlMs }
  if (user !== undefined) written.user = user
  return written
}

function setOf (prefix: string, user: string): string {
  return `${prefix}user:${user}`
}

async function score (admin: Client, prefix: string, user: string, key: string): Promise<number | null> {
  const found = await admin.zscore(setOf(prefix, user), key)
  return found === null ? null : Number(found)
}

/** The keys whose record names a user whose set has no entry for it reaching its expiry. */
async function unfiled (admin: Client, prefix: string, keys: string[]): Promise<string[]> {
  const found: string[] = []
  for (const key of keys) {
    // The record and the set cannot be read in one step: the entry counts only when the
    // record is the same before and after it was read.
    for (let before = await admin.hmget(prefix + key, 'v', 'c', 'e', 'u', 'd'); ;) {
      const [, , expiresAt, user] = before
      if (user === null) break
      const entry = await score(admin, prefix, user, key)
      const after = await admin.hmget(prefix + key, 'v', 'c', 'e', 'u', 'd')
      if (after.join() !== before.join()) {
        before = after
        continue
      }
      if (entry === null || entry < Number(expiresAt)) found.push(`${key} (user ${user}, expires ${expiresAt}, entry ${entry})`)
      break
    }
  }
  return found
}

/** The keys `user`'s records are at, by reading every key given. */
async function recordsOf (admin: Client, prefix: string, user: string, keys: string[]): Promise<string[]> {
  const users = await Promise.all(keys.map((key) => admin.hget(prefix + key, 'u')))
  return keys.filter((_, i) => users[i] === user).sort()
}

async function listedKeys (store: RedisStore, user: string): Promise<string[]> {
  return (await store.listUser(user)).map(({ key }) => key).sort()
}

/** A client on `inner` whose script calls go through `around`, to fail or inspect them. */
function intercept (inner: Client, around: (forward: () => Promise<unknown>, args: Array<string | number>, method: string) => Promise<unknown>): Client {
  const call = (method: 'evalsha' | 'eval'): Call => (...args) => around(() => (inner[method] as unknown as Call).apply(inner, args), args, method)
  return { isCluster: inner.isCluster, hmget: inner.hmget.bind(inner), evalsha: call('evalsha'), eval: call('eval') } as unknown as Client
}

/** A client whose `failAt`-th script call and every later one fail: the process died there. */
function dyingAt (inner: Client, failAt: number): Client {
  let calls = 0
  return intercept(inner, (forward, _, method) => {
    // A NOSCRIPT fallback is the same step as the EVALSHA it follows.
    if (method === 'evalsha' && ++calls >= failAt) return Promise.reject(new Error('the process died here'))
    return forward()
  })
}

/** With the application's clock `ms` ahead while `run` runs. */
async function later<T> (ms: number, run: () => Promise<T>): Promise<T> {
  const now = Date.now
  Date.now = () => now() + ms
  try {
    return await run()
  } finally {
    Date.now = now
  }
}

/** Starts a server setup now, for a test to await later; stopped when the file ends. */
function startEarly<S extends { stop (): Promise<void> }> (start: () => Promise<S>): Promise<S> {
  const started = start()
  t.teardown(async () => (await started.catch(() => undefined))?.stop())
  started.catch(() => {})
  return started
}

function own<C extends Client> (t: tap.Test, client: C): C {
  t.teardown(() => client.disconnect())
  return client
}

if (!redisUnavailable(t)) {
  const standalone = startEarly(startStandalone)
  const cluster = startEarly(startCluster)
  const sentinel = startEarly(() => startSentinel('users'))
  t.test('standalone', async (t) => {
    const { port } = await standalone
    topologyTests(t, { name: 'standalone', cluster: false, connect: (t) => own(t, new Redis({ host: HOST, port })) })
  })
  t.test('cluster', async (t) => {
    const { nodes } = await cluster
    const topology = { name: 'cluster', cluster: true, connect: (t: tap.Test) => own(t, new Cluster(nodes)) }
    topologyTests(t, topology)
    clusterTests(t, topology)
  })
  t.test('sentinel', async (t) => {
    const { sentinelPort, name } = await sentinel
    topologyTests(t, { name: 'sentinel', cluster: false, connect: (t) => own(t, new Redis({ sentinels: [{ host: HOST, port: sentinelPort }], name })) })
  })
}

function topologyTests (t: tap.Test, topology: Topology): void {
  semanticsTests(t, topology)
  expiryTests(t, topology)
  raceTests(t, topology)
  if (topology.name !== 'sentinel') {
    const client = topology.connect(t)
    revocationScenarios(t, {
      name: `RedisStore ${topology.name}, through the plugin`,
      counts: true,
      options: () => ({ store: new RedisStore({ client, prefix: nextPrefix(topology) }), userKey: 'userId' })
    })
  }
}

function semanticsTests (t: tap.Test, topology: Topology): void {
  t.test('listUser lists the live records of that user; a user change moves a record; destroyUser counts and spares others', async (t) => {
    const { store, prefix, admin } = setup(t, topology)
    const [ada, bob] = [uniqueKey(), uniqueKey()]
    const [adas, moved, bobs, nobodys, dropped] = [uniqueKey(), uniqueKey(), uniqueKey(), uniqueKey(), uniqueKey()]
    const written = new Map<string, SessionRecord>([
      [adas, filed({ n: 1 }, ada)], [moved, filed({ n: 2 }, ada)], [bobs, filed({}, bob)],
      [nobodys, filed({}, undefined)], [dropped, filed({}, ada)]
    ])
    for (const [key, record] of written) t.equal(await store.set(key, record, 0), true)
    t.same(await store.get(adas), written.get(adas), 'get answers the user')
    t.notOk(Object.hasOwn(await store.get(nobodys) as object, 'user'), 'and no user property for a record without one')
    written.set(moved, filed({ n: 2 }, bob, 2))
    written.set(dropped, filed({}, undefined, 2))
    t.equal(await store.set(moved, written.get(moved) as SessionRecord, 1), true)
    t.equal(await store.set(dropped, written.get(dropped) as SessionRecord, 1), true)
    t.same(await store.get(dropped), written.get(dropped), 'a user taken away is gone from the record')
    t.equal(await admin.hexists(prefix + dropped, 'u'), 0)

    const listed = await store.listUser(ada)
    t.same(listed, [{ key: adas, record: written.get(adas) }], "ada's one record, as written")
    t.same(await listedKeys(store, bob), [bobs, moved].sort(), "bob's record and the one moved to bob")
    // One script does both on a single server; a Cluster cannot tell an old entry from a
    // write on its way, so it leaves the entry to its expiry and the listing skips it.
    const oldEntries = [await score(admin, prefix, ada, moved), await score(admin, prefix, ada, dropped)]
    if (topology.cluster) t.notOk(oldEntries.includes(null), 'on a Cluster the old entries wait for their expiry')
    else t.same(oldEntries, [null, null], 'the old entries went with the write')

    t.equal(await store.destroyUser(ada), 1, 'destroyUser resolves how many records it ended')
    t.equal(await store.get(adas), undefined)
    for (const key of [moved, bobs, nobodys, dropped]) t.same(await store.get(key), written.get(key), 'other records untouched')
    t.equal(await score(admin, prefix, ada, adas), null, 'the entry of the deleted record is gone')
    if (!topology.cluster) t.equal(await admin.exists(setOf(prefix, ada)), 0, 'and the set with it')
    t.same(await store.listUser(ada), [])
    t.equal(await store.destroyUser(ada), 0, 'again: nothing left')
    t.equal(await store.destroyUser(bob), 2)
    t.same(await store.listUser(bob), [])
  })

  t.test('destroy takes the record out of the index', async (t) => {
    const { store, prefix, admin } = setup(t, topology)
    const [ada, key] = [uniqueKey(), uniqueKey()]
    await store.set(key, filed({}, ada), 0)
    t.ok(await score(admin, prefix, ada, key))
    await store.destroy(key)
    t.equal(await admin.exists(prefix + key), 0)
    t.equal(await score(admin, prefix, ada, key), null)
    await store.destroy(key)
    await store.destroy(uniqueKey())
    t.same(await store.listUser(ada), [])
  })

  t.test('a record the serializer cannot read is left out of a listing, and still ended', async (t) => {
    const { store, prefix, admin } = setup(t, topology)
    const [ada, good, broken] = [uniqueKey(), uniqueKey(), uniqueKey()]
    for (const key of [good, broken]) await store.set(key, filed({ key }, ada), 0)
    await admin.hset(prefix + broken, 'd', '{"a":')
    t.same(await listedKeys(store, ada), [good])
    t.equal(await store.destroyUser(ada), 2)
    t.equal(await admin.exists(prefix + broken), 0)
  })
}

function expiryTests (t: tap.Test, topology: Topology): void {
  t.test("a user's set expires at its greatest score, and never lives without an expiry", async (t) => {
    const { store, prefix, admin } = setup(t, topology)
    const [ada, a, b] = [uniqueKey(), uniqueKey(), uniqueKey()]
    const set = setOf(prefix, ada)
    const expiry = async (): Promise<unknown> => admin.call('PEXPIRETIME', set)
    const [first, second] = [filed({}, ada, 1, 60_000), filed({}, ada, 1, 120_000)]
    await store.set(a, first, 0)
    t.equal(await expiry(), first.expiresAt)
    await store.set(b, second, 0)
    t.equal(await expiry(), second.expiresAt, 'a later record pushes it out')
    await store.set(a, filed({}, ada, 2, 30_000), 1)
    t.equal(await expiry(), second.expiresAt, 'an earlier one leaves it')
    const touched = Date.now() + 300_000
    t.equal(await store.touch(a, touched), true)
    t.same([await score(admin, prefix, ada, a), await expiry()], [touched, touched], 'touch moves the entry and the set')
    const rewritten = filed({}, ada, 3, 30_000)
    await store.set(a, rewritten, 2)
    const entry = await score(admin, prefix, ada, a) as number
    if (topology.cluster) {
      // A Cluster files a record before writing it, so the entry never drops below an expiry
      // the record may still have, should the write fail; it rises a little instead.
      t.ok(entry > touched && entry < touched + 1, `a shorter rewrite nudges the entry up: ${entry}`)
      t.equal(await expiry(), touched + 1, 'and the set lasts past it, to the whole millisecond')
    } else {
      t.same([entry, await expiry()], [rewritten.expiresAt, second.expiresAt], 'a shorter rewrite')
    }
    t.equal(await store.touch(b, Date.now() - 1), true, 'a touch into the past')
    t.equal(await admin.exists(prefix + b), 0, 'ends the record')
    t.same(await listedKeys(store, ada), [a])
    t.ok(await admin.pttl(set) > 0, 'the set still expires')
  })

  t.test('expired records are not listed, their entries go, and the set ends with its last record', async (t) => {
    const { store, prefix, admin } = setup(t, topology)
    const [ada, bob, lapsing, staying, bobs] = [uniqueKey(), uniqueKey(), uniqueKey(), uniqueKey(), uniqueKey()]
    const short = filed({}, ada, 1, 300)
    await store.set(lapsing, short, 0)
    await store.set(staying, filed({}, ada), 0)
    await store.set(bobs, filed({}, bob, 1, 300), 0)
    // Redis' clock ends the record, the application's the entry: both have to pass.
    await waitFor('the short record to expire', async () => await admin.exists(prefix + lapsing) === 0 && Date.now() > short.expiresAt)
    t.same(await listedKeys(store, ada), [staying])
    t.equal(await score(admin, prefix, ada, lapsing), null, 'its entry is gone')
    t.equal(await store.destroyUser(ada), 1, 'an expired record is not counted')
    await waitFor("bob's set to expire with his only record", async () => await admin.exists(setOf(prefix, bob)) === 0)
    t.same(await store.listUser(bob), [])
  })
}

function raceTests (t: tap.Test, topology: Topology): void {
  t.test('50 creates racing destroyUser from another client: none created before it survives, every survivor is filed', async (t) => {
    const { store, prefix, admin } = setup(t, topology)
    const revoker = new RedisStore({ client: topology.connect(t), prefix })
    const ada = uniqueKey()
    const keys = Array.from({ length: 50 }, () => uniqueKey())
    const createdBefore: string[] = []
    let revocation: Promise<number> | undefined
    let resolved = 0
    const creates: Array<Promise<boolean>> = []
    // Five creates per turn of the event loop, so they reach Redis in several writes and the
    // revocation, started when the 20th is stored, lands among them.
    for (let i = 0; i < keys.length; i += 5) {
      for (const key of keys.slice(i, i + 5)) {
        creates.push(store.set(key, filed({ key }, ada), 0).then((created) => {
          if (created && revocation === undefined) createdBefore.push(key)
          if (++resolved === 20) revocation = revoker.destroyUser(ada)
          return created
        }))
      }
      await nextTurn()
    }
    t.same(await Promise.all(creates), keys.map(() => true), 'every create succeeds')
    const ended = await (revocation as Promise<number>)
    t.ok(createdBefore.length >= 20, `${createdBefore.length} created before destroyUser was called`)
    const survivors = (await Promise.all(keys.map((key) => admin.exists(prefix + key)))).flatMap((n, i) => n === 1 ? [keys[i]] : [])
    t.same(survivors.filter((key) => createdBefore.includes(key)), [], 'none created before destroyUser survives')
    t.equal(ended + survivors.length, keys.length, 'what destroyUser counted and what survived are all the records')
    t.same(await listedKeys(store, ada), survivors.sort(), 'every survivor is listed')
    t.equal(await revoker.destroyUser(ada), survivors.length)
    const fresh = uniqueKey()
    t.equal(await store.set(fresh, filed({}, ada), 0), true, 'a create after destroyUser resolved')
    t.same(await listedKeys(store, ada), [fresh])
  })

  t.test('every record with a user is filed at every moment of a concurrent workload', async (t) => {
    const { prefix, admin } = setup(t, topology)
    const keys = Array.from({ length: 24 }, () => uniqueKey())
    const users = [uniqueKey(), uniqueKey(), uniqueKey()]
    const violations: string[] = []
    let checks = 0
    // Right after each step on a record, before the store takes its next one, the record
    // must already be covered by its entry: were a Cluster to write the record first, this
    // would catch it between the two steps.
    const client = intercept(topology.connect(t), async (forward, args) => {
      const answer = await forward()
      const key = String(args[2])
      if (key.startsWith(prefix) && !key.startsWith(setOf(prefix, ''))) {
        checks++
        violations.push(...await unfiled(admin, prefix, [key.slice(prefix.length)]))
      }
      return answer
    })
    const store = new RedisStore({ client, prefix })
    const revoker = new RedisStore({ client: topology.connect(t), prefix })
    const sessions = keys.map(async (key, i) => {
      let version = 0
      for (let round = 0; round < 12; round++) {
        const step = (i + round) % 6
        if (step === 5) {
          await store.touch(key, Date.now() + 90_000 + round)
        } else {
          const user = step === 4 ? undefined : users[(i + round) % users.length]
          // A record destroyUser ended is created again.
          if (await store.set(key, filed({ round }, user, version + 1, 60_000 + round), version)) version++
          else version = await store.set(key, filed({ round }, user), 0) ? 1 : 0
        }
      }
    })
    const revocations = (async () => {
      for (let round = 0; round < 6; round++) {
        await nextTurn()
        await revoker.destroyUser(users[round % users.length])
      }
    })()
    await Promise.all([...sessions, revocations])
    t.ok(checks > keys.length * 12, `${checks} checks`)
    t.same(violations, [], 'no record was ever without its entry')
    t.same(await unfiled(admin, prefix, keys), [], 'nor is one afterwards')
    for (const user of users) t.same(await listedKeys(store, user), await recordsOf(admin, prefix, user, keys), 'listUser finds every record of the user')
  })
}

function clusterTests (t: tap.Test, topology: Topology): void {
  t.test('cluster: a crash between the steps leaves at most an entry without a record, which is ignored, then cleaned', async (t) => {
    const { store, prefix, admin } = setup(t, topology)
    const [ada, key] = [uniqueKey(), uniqueKey()]
    const record = filed({}, ada)
    const dying = new RedisStore({ client: dyingAt(topology.connect(t), 2), prefix })
    await t.rejects(dying.set(key, record, 0), /died here/, 'the process dies after filing, before the write')
    t.equal(await admin.exists(prefix + key), 0, 'no record')
    t.equal(await score(admin, prefix, ada, key), record.expiresAt, 'but its entry')
    t.same(await store.listUser(ada), [], 'listUser ignores the entry')
    t.equal(await store.destroyUser(ada), 0, 'destroyUser counts nothing for it')
    // It cannot be told from a write still on its way, so it stays until its expiry.
    t.equal(await score(admin, prefix, ada, key), record.expiresAt)
    t.same(await later(120_000, () => store.listUser(ada)), [])
    t.equal(await admin.exists(setOf(prefix, ada)), 0, 'once it has expired, it and its empty set are gone')
  })

  t.test('cluster: whichever step a write, a touch, a move or a destroy dies at, every record stays filed', async (t) => {
    const { store, prefix, admin } = setup(t, topology)
    const [ada, bob] = [uniqueKey(), uniqueKey()]
    const operations: Record<string, (dying: RedisStore, key: string) => Promise<unknown>> = {
      create: (dying, key) => dying.set(key, filed({}, ada), 0),
      update: (dying, key) => dying.set(key, filed({ n: 2 }, ada, 2, 120_000), 1),
      move: (dying, key) => dying.set(key, filed({}, bob, 2, 120_000), 1),
      touch: (dying, key) => dying.touch(key, Date.now() + 300_000),
      destroy: (dying, key) => dying.destroy(key),
      destroyUser: (dying) => dying.destroyUser(ada)
    }
    const keys: string[] = []
    for (const [name, operation] of Object.entries(operations)) {
      for (let failAt = 1; failAt <= 4; failAt++) {
        const key = uniqueKey()
        keys.push(key)
        if (name !== 'create') await store.set(key, filed({}, ada), 0)
        const dying = new RedisStore({ client: dyingAt(topology.connect(t), failAt), prefix })
        await operation(dying, key).catch(() => {})
        t.same(await unfiled(admin, prefix, keys), [], `${name} dying at step ${failAt}`)
      }
    }
    for (const user of [ada, bob]) t.same(await listedKeys(store, user), await recordsOf(admin, prefix, user, keys), 'listUser finds every record')
  })

  t.test('cluster: a record created again between its deletion and the removal of its entry keeps the entry', async (t) => {
    const { store, prefix, admin } = setup(t, topology)
    const expiresAt = Date.now() + 60_000
    // The record is deleted at the first script call of destroy() and at the second of
    // destroyUser(); another process creates it again, with the same expiry, right after.
    const cases: Array<[string, number, (store: RedisStore, key: string, user: string) => Promise<unknown>]> = [
      ['destroy', 1, (store, key) => store.destroy(key)],
      ['destroyUser', 2, (store, _, user) => store.destroyUser(user)]
    ]
    for (const [name, deletedAt, operation] of cases) {
      const [ada, key] = [uniqueKey(), uniqueKey()]
      const again = (): SessionRecord => ({ ...filed({ again: true }, ada), expiresAt })
      t.equal(await store.set(key, again(), 0), true)
      let calls = 0
      const client = intercept(topology.connect(t), async (forward, _, method) => {
        const answer = await forward()
        if (method === 'evalsha' && ++calls === deletedAt) t.equal(await store.set(key, again(), 0), true, `created again during ${name}`)
        return answer
      })
      await operation(new RedisStore({ client, prefix }), key, ada)
      t.same(await unfiled(admin, prefix, [key]), [], `${name}: the record created again is filed`)
      t.same(await listedKeys(store, ada), [key])
      t.equal(await store.destroyUser(ada), 1)
    }
  })

  t.test('cluster: a touch follows a user change made between its steps', async (t) => {
    const { store, prefix, admin } = setup(t, topology)
    const [ada, bob, key] = [uniqueKey(), uniqueKey(), uniqueKey()]
    await store.set(key, filed({}, ada), 0)
    let moved = false
    const client = intercept(topology.connect(t), async (forward) => {
      const answer = await forward()
      // The first answer naming the user: another process moves the record meanwhile.
      if (answer === ada && !moved) {
        moved = true
        t.equal(await store.set(key, filed({}, bob, 2), 1), true)
      }
      return answer
    })
    const touched = Date.now() + 300_000
    t.equal(await new RedisStore({ client, prefix }).touch(key, touched), true)
    t.ok(moved)
    const read = await store.get(key)
    t.same([read?.user, read?.version, read?.expiresAt], [bob, 2, touched], "the record is bob's, touched")
    t.equal(await score(admin, prefix, bob, key), touched, "bob's entry covers the touch")
    t.same(await unfiled(admin, prefix, [key]), [])
  })
}

import t from 'tap'
import type { Collection, Document } from 'mongodb'
import { MongoStore, type MongoStoreOptions } from '../../src/index'
import { conformance } from '../../src/testing'
import { record, uniqueKey } from '../helpers/record'
import { waitFor } from '../helpers/postgres-server'
import { helperTarget, mongoTargets, REAL_SERVER_SKIPPED, sentCommand, type MongoTarget } from '../helpers/mongo-target'

mongoTargets(t, (name, start) => {
  t.test(`MongoStore on ${name}`, async (t) => {
    const target = await start()
    t.teardown(() => target.stop())
    conformance({
      test: (name, fn) => t.test(name, fn),
      name: 'MongoStore',
      store: () => new MongoStore({ collection: target.collection() })
    })
    optionTests(t, target)
    commandTests(t, target)
    documentTests(t, target)
    indexTests(t, target)
    expiryTests(t, target)
    if (target.server !== undefined) serverTests(t, target)
  })
})

// Only a replica set shows a read preference on the wire: our test server announces one.
t.test('MongoStore on a replica set reads from the primary, whatever the collection\'s read preference', async (t) => {
  const target = await helperTarget({ replicaSet: 'rs0' })
  t.teardown(() => target.stop())
  const client = target.client({ readPreference: 'secondaryPreferred' })
  const collection = target.collection(client)
  const store = new MongoStore({ collection })
  const key = uniqueKey()
  const written = { ...record({ n: 1 }), user: 'digest' }
  t.equal(await store.set(key, written, 0), true)
  t.same(await store.get(key), written)
  t.same((await store.listUser('digest')).map((s) => s.key), [key])
  t.ok(await collection.findOne({ _id: key as unknown as Document['_id'] }), 'the collection\'s own read, for comparison')
  const reads = client.commands.filter((c) => c.commandName === 'find').map((c) => c.command.$readPreference)
  t.same(reads, [undefined, undefined, { mode: 'secondaryPreferred' }], 'the store\'s get and listUser ask for the primary (no $readPreference); the collection\'s default would not')
})

t.test('without MONGODB_URL the real-server run is a skip that says why, under CI=true too', async (t) => {
  const saved = { CI: process.env.CI, MONGODB_URL: process.env.MONGODB_URL }
  t.teardown(() => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name]
      else process.env[name] = value
    }
  })
  process.env.CI = 'true'
  delete process.env.MONGODB_URL
  const ran: string[] = []
  const declared: unknown[] = []
  const recorder = { test: (name: string, options: unknown) => declared.push([name, options]) } as unknown as tap.Test
  mongoTargets(recorder, (name) => ran.push(name))
  t.same(ran, ['the test server'])
  t.same(declared, [['the same tests on a real MongoDB', { skip: REAL_SERVER_SKIPPED }]], 'a skipped test, the reason as its message, nothing that fails')
})

/** A collection of a client of its own, so that its `commands` are this test's alone. */
function watched (target: MongoTarget): { collection: Collection<Document>, sent: () => Document[] } {
  const client = target.client()
  return { collection: target.collection(client), sent: () => client.commands.map(sentCommand) }
}

function optionTests (t: tap.Test, target: MongoTarget): void {
  t.test('rejects bad options by name; constructing sends nothing', async (t) => {
    const { collection, sent } = watched(target)
    const bad: Array<[string, unknown]> = [
      ['options', 'sessions'],
      ['collection', {}],
      ['collection', { collection: { findOne () {} } }],
      ['createIndexes', { collection, createIndexes: 'yes' }],
      ['mongoUrl', { collection, mongoUrl: 'mongodb://localhost' }],
      ['ttl', { collection, ttl: 3600 }],
      ['createIndex', { collection, createIndex: false }]
    ]
    for (const [i, [name, options]] of bad.entries()) {
      t.throws(() => new MongoStore(options as MongoStoreOptions), {
        code: 'FST_SESS_INVALID_OPTION', message: new RegExp(`"MongoStore ${name}"`)
      }, `bad ${name} #${i}`)
    }
    t.throws(() => new MongoStore({ collection, createIndex: false } as unknown as MongoStoreOptions), { message: /did you mean "createIndexes"/ })
    t.throws(() => new MongoStore({ collection, clientPromise: null } as unknown as MongoStoreOptions), { message: /pass a collection/ })
    t.throws(() => new MongoStore({ collection, autoRemove: 'native' } as unknown as MongoStoreOptions), { message: /TTL index/ })
    const store = new MongoStore({ collection })
    t.ok(store)
    t.same(sent(), [], 'no command before the first call')
  })

  t.test('the store leaves the client open: it is yours', async (t) => {
    const client = target.client()
    const store = new MongoStore({ collection: target.collection(client) })
    await store.set(uniqueKey(), record({}), 0)
    t.equal((store as { close?: unknown }).close, undefined, 'no close() to call')
    t.same(await client.db('admin').command({ ping: 1 }), { ok: 1 })
  })
}

function commandTests (t: tap.Test, target: MongoTarget): void {
  // The exact commands each operation sends, so that a change of a query shows in review.
  t.test('the commands of each operation', async (t) => {
    const now = Date.now()
    t.capture(Date, 'now', () => now)
    const { collection, sent } = watched(target)
    const name = collection.collectionName
    const store = new MongoStore({ collection })
    const key = uniqueKey()
    const iso = (ms: number): string => new Date(ms).toISOString()
    const live = { $gt: iso(now) }
    const first = { data: { n: 1 }, version: 1, createdAt: now, expiresAt: now + 60_000, user: 'digest' }
    const second = { data: { n: 2 }, version: 2, createdAt: now, expiresAt: now + 90_000 }

    t.equal(await store.set(key, first, 0), true)
    t.same(sent(), [
      {
        createIndexes: name,
        indexes: [
          { key: { e: 1 }, name: 'e_1', expireAfterSeconds: 0 },
          { key: { u: 1 }, name: 'u_1', partialFilterExpression: { u: { $exists: true } } }
        ]
      },
      { insert: name, documents: [{ _id: key, v: 1, d: '{"n":1}', c: iso(now), e: iso(now + 60_000), u: 'digest' }], ordered: true }
    ], 'the indexes once, then a create: one insert')

    const expect = async (what: string, operation: () => Promise<unknown>, command: Document): Promise<void> => {
      const before = sent().length
      await operation()
      t.same(sent().slice(before), [command], what)
    }
    await expect('get: one find, live documents only', () => store.get(key),
      { find: name, filter: { _id: key, e: live }, limit: 1, singleBatch: true })
    await expect('compare-and-set: one update on the key, the version and a live expiry', () => store.set(key, second, 1),
      { update: name, updates: [{ q: { _id: key, v: 1, e: live }, u: { $set: { v: 2, d: '{"n":2}', c: iso(now), e: iso(now + 90_000) }, $unset: { u: '' } } }], ordered: true })
    await expect('compare-and-set with a user sets it', () => store.set(key, { ...second, version: 3, user: 'digest' }, 2),
      { update: name, updates: [{ q: { _id: key, v: 2, e: live }, u: { $set: { v: 3, d: '{"n":2}', c: iso(now), e: iso(now + 90_000), u: 'digest' } } }], ordered: true })
    await expect('touch: the expiry alone, of a live document', () => store.touch(key, now + 120_000.5),
      { update: name, updates: [{ q: { _id: key, e: live }, u: { $set: { e: iso(now + 120_001) } } }], ordered: true })
    await expect('listUser: one find on the user', () => store.listUser('digest'),
      { find: name, filter: { u: 'digest', e: live } })
    await expect('destroyUser: one delete of the live ones', () => store.destroyUser('digest'),
      { delete: name, deletes: [{ q: { u: 'digest', e: live }, limit: 0 }], ordered: true })
    await expect('destroy: one delete', () => store.destroy(key),
      { delete: name, deletes: [{ q: { _id: key }, limit: 1 }], ordered: true })

    // A create on a key still held: the insert fails on the key, and an update takes over an expired document only.
    await store.set(key, first, 0)
    const before = sent().length
    t.equal(await store.set(key, { ...second, version: 1 }, 0), false, 'the key is live: a conflict')
    t.same(sent().slice(before).map((c) => Object.keys(c)[0]), ['insert', 'update'])
    t.same(sent().at(-1), {
      update: name,
      updates: [{ q: { _id: key, e: { $lte: iso(now) } }, u: { $set: { v: 1, d: '{"n":2}', c: iso(now), e: iso(now + 90_000) }, $unset: { u: '' } } }],
      ordered: true
    })
  })
}

function documentTests (t: tap.Test, target: MongoTarget): void {
  t.test('one document per session: the key, version, data as text, Dates, the user', async (t) => {
    const collection = target.collection()
    const store = new MongoStore({ collection })
    const key = uniqueKey()
    const written = { ...record({ $where: 'sleep(1000)', 'a.b': { $gt: '' }, nul: 'a\u0000b', order: { z: 1, a: 2 } }), user: 'digest-of-ada' }
    t.equal(await store.set(key, written, 0), true)
    t.same(await collection.find({}).toArray(), [{
      _id: key,
      v: 1,
      d: '{"$where":"sleep(1000)","a.b":{"$gt":""},"nul":"a\\u0000b","order":{"z":1,"a":2}}',
      c: new Date(written.createdAt),
      e: new Date(written.expiresAt),
      u: 'digest-of-ada'
    }], 'operator-like keys stay inside the text')
    t.same(await store.get(key), written)
    t.same(Object.keys((await store.get(key))?.data.order as object), ['z', 'a'], 'key order kept')
  })

  t.test('a document this store did not write is an unusable record; a listing leaves it out', async (t) => {
    const collection = target.collection()
    const store = new MongoStore({ collection })
    const [good, notJson, notText, noDates] = [uniqueKey(), uniqueKey(), uniqueKey(), uniqueKey()]
    for (const key of [good, notJson, notText, noDates]) await store.set(key, { ...record({ ok: true }), user: 'u' }, 0)
    await collection.updateOne({ _id: notJson as unknown as Document['_id'] }, { $set: { d: '{"a":' } })
    await collection.updateOne({ _id: notText as unknown as Document['_id'] }, { $set: { d: 7 } })
    await collection.updateOne({ _id: noDates as unknown as Document['_id'] }, { $set: { c: 7 } })
    await t.rejects(store.get(notJson), { code: 'FST_SESS_UNUSABLE_RECORD', message: /not JSON/ })
    await t.rejects(store.get(notText), { code: 'FST_SESS_UNUSABLE_RECORD', message: /not a document this store wrote/ })
    await t.rejects(store.get(noDates), { code: 'FST_SESS_UNUSABLE_RECORD' })
    t.same((await store.listUser('u')).map((s) => s.key), [good])
    t.equal(await store.destroyUser('u'), 4, 'every live one is removed')
  })

  t.test('a failed insert is a failure, not a conflict', async (t) => {
    const collection = target.collection()
    const failing = Object.assign(Object.create(collection) as Collection<Document>, {
      insertOne: async () => { throw Object.assign(new Error('not primary'), { code: 10107 }) }
    })
    const store = new MongoStore({ collection: failing })
    await t.rejects(store.set(uniqueKey(), record({}), 0), { message: 'not primary' })
  })
}

function indexTests (t: tap.Test, target: MongoTarget): void {
  const indexes = async (collection: Collection<Document>): Promise<Document[]> =>
    (await collection.indexes()).map(({ v, ...index }) => index).sort((a, b) => String(a.name).localeCompare(String(b.name)))

  t.test('the indexes: created once per store, by concurrent first calls together; again, no change', async (t) => {
    const { collection, sent } = watched(target)
    const store = new MongoStore({ collection })
    await Promise.all([store.get(uniqueKey()), store.set(uniqueKey(), record({}), 0), store.destroy(uniqueKey())])
    await store.get(uniqueKey())
    t.same(sent().map((c) => Object.keys(c)[0]), ['createIndexes', 'find', 'insert', 'delete', 'find'])
    const expected = [
      { key: { _id: 1 }, name: '_id_' },
      { key: { e: 1 }, name: 'e_1', expireAfterSeconds: 0 },
      { key: { u: 1 }, name: 'u_1', partialFilterExpression: { u: { $exists: true } } }
    ]
    t.same(await indexes(collection), expected)
    const again = new MongoStore({ collection })
    await again.get(uniqueKey())
    t.same(await indexes(collection), expected, 'a second store (another process) changes nothing')
  })

  t.test('createIndexes: false sends no index command', async (t) => {
    const { collection, sent } = watched(target)
    await new MongoStore({ collection, createIndexes: false }).get(uniqueKey())
    t.same(sent().map((c) => Object.keys(c)[0]), ['find'])
  })

  t.test('an index that cannot be created fails the call, and the next call tries again', async (t) => {
    const { collection, sent } = watched(target)
    // Someone's own index on the expiry, with other options: MongoDB refuses to change it.
    await collection.createIndex({ e: 1 }, { name: 'e_1', expireAfterSeconds: 3600 })
    const store = new MongoStore({ collection })
    await t.rejects(store.get(uniqueKey()), { code: 85 })
    await t.rejects(store.set(uniqueKey(), record({}), 0), { code: 85 }, 'still refused: nothing was swallowed')
    await collection.drop()
    t.equal(await store.set(uniqueKey(), record({}), 0), true, 'works once the conflicting index is gone')
    t.same(sent().map((c) => Object.keys(c)[0]).filter((n) => n === 'createIndexes').length, 4, 'the user\'s, two failed, one that worked')
  })
}

function expiryTests (t: tap.Test, target: MongoTarget): void {
  t.test('an expired document is missing at once, and a create takes it over', async (t) => {
    const collection = target.collection()
    const store = new MongoStore({ collection })
    const key = uniqueKey()
    const start = Date.now()
    let now = start
    t.capture(Date, 'now', () => now)
    await store.set(key, { ...record({ old: true }), user: 'ada' }, 0)
    now += 120_000
    t.equal(await store.get(key), undefined, 'missing for get')
    t.equal(await store.touch(key, now + 60_000), false, 'touch does not bring it back')
    t.equal(await store.set(key, record({ stale: true }, 2), 1), false, 'nor a compare-and-set')
    t.same(await store.listUser('ada'), [])
    t.equal(await store.destroyUser('ada'), 0)
    t.equal((await collection.find({}).toArray()).length, 1, 'still stored: the TTL monitor has not run')
    const fresh = { data: { fresh: true }, version: 1, createdAt: now, expiresAt: now + 60_000 }
    const results = await Promise.all([store.set(key, fresh, 0), store.set(key, { ...fresh, data: { other: true } }, 0)])
    t.same([...results].sort(), [false, true], 'of two creates over it, one wins')
    const won = results[0] ? fresh.data : { other: true }
    t.same((await store.get(key))?.data, won)
    t.same((await collection.findOne({}))?.u, undefined, 'the old user left with the old session')
  })
}

function serverTests (t: tap.Test, target: MongoTarget): void {
  const server = target.server as NonNullable<MongoTarget['server']>

  // One expired document and one live one, in a fresh collection.
  async function goneAndKept (): Promise<{ collection: ReturnType<MongoTarget['collection']>, kept: string }> {
    const collection = target.collection()
    const store = new MongoStore({ collection })
    const [gone, kept] = [uniqueKey(), uniqueKey()]
    await store.set(gone, record({}, 1, -1), 0)
    await store.set(kept, record({}), 0)
    return { collection, kept }
  }

  t.test('the test server deletes what its TTL index says has expired, and only that', async (t) => {
    const { collection, kept } = await goneAndKept()
    server.expire()
    t.same((await collection.find({}).toArray()).map((d) => d._id), [kept])
  })

  t.test('the test server also deletes expired documents on its own, every ttlPeriodMs', async (t) => {
    const { collection, kept } = await goneAndKept()
    await waitFor('the TTL pass', async () => (await collection.find({}).toArray()).length === 1)
    t.same((await collection.find({}).toArray()).map((d) => d._id), [kept])
  })

  t.test('the test server refuses what it does not implement', async (t) => {
    const collection = target.collection()
    const db = target.client().db('fastify_sessions_test')
    await t.rejects(db.command({ aggregate: 1, pipeline: [] }), { code: 59, message: "no such command: 'aggregate'" })
    await t.rejects(collection.findOneAndUpdate({ _id: 'x' as unknown as Document['_id'] }, { $set: { a: 1 } }), { code: 59 })
    await t.rejects(collection.findOne({ a: { $regex: 'x' } }), { code: 2, message: /unknown operator: \$regex/ })
    await t.rejects(collection.updateOne({}, { $rename: { a: 'b' } }), { code: 9 })
  })
}

import t from 'tap'
import type * as memjs from 'memjs'
import { MemcachedStore, type MemcachedStoreOptions, type MemjsClient } from '../../src/index'
import { conformance } from '../../src/testing'
import { record, uniqueKey } from '../helpers/record'
import { clientOn, counting, memcachedUnavailable, startMemcached, waitFor, type MemcachedServer } from '../helpers/memcached-server'

// MemcachedStore on private memcached servers: the conformance suite on one server and on two,
// then what only memcached has: CAS tokens, its expiration rules, its item size limit.

const DAY_S = 86_400

/**
 * A memjs client that runs `meddle` (another writer, on its own client) before forwarding the
 * first `times` compare-and-set writes (REPLACE with a CAS token), so that each meets an item
 * changed since its read.
 */
function meddling (client: memjs.Client, times: number, meddle: () => Promise<unknown>): MemjsClient {
  let left = times
  return {
    get seq () { return client.seq },
    incrSeq: () => client.incrSeq(),
    perform (key, request, seq, callback, retries) {
      if (request[1] !== 3 || left === 0) return client.perform(key, request, seq, callback, retries)
      left--
      void meddle().then(() => client.perform(key, request, seq, callback, retries))
    }
  }
}

if (!memcachedUnavailable(t)) {
  // The conformance suite writes a record of over 1 MB: memcached's default item size is 1 MB.
  const servers = Promise.all([startMemcached(['-I', '2m']), startMemcached(['-I', '2m'])])
  t.teardown(async () => { await Promise.all((await servers).map((s) => s.stop())) })
  t.test('MemcachedStore', async (t) => storeTests(t, await servers))
}

async function storeTests (t: tap.Test, [one, two]: MemcachedServer[]): Promise<void> {
  const single = clientOn(t, [one])
  const both = clientOn(t, [one, two])
  conformance({ test: (name, fn) => t.test(name, fn), name: 'MemcachedStore', store: () => new MemcachedStore({ client: single }) })
  conformance({ test: (name, fn) => t.test(name, fn), name: 'MemcachedStore on two servers', store: () => new MemcachedStore({ client: both }) })
  optionTests(t, single)
  itemTests(t, one, single)
  casTests(t, one, single)
  expiryTests(t, one, single)
  sizeTests(t)
  twoServerTests(t, [one, two], both)
}

function optionTests (t: tap.Test, client: memjs.Client): void {
  t.test('rejects bad options by name; constructing sends nothing', async (t) => {
    const bad: Array<[string, unknown]> = [
      ['options', null],
      ['options', 'localhost:11211'],
      ['client', {}],
      ['client', { client: {} }],
      ['client', { client: { perform () {} } }],
      ['client', { client: { perform () {}, incrSeq () {}, options: { failover: true } } }],
      ['prefix', { client, prefix: 7 }],
      ['prefix', { client, prefix: 'x'.repeat(208) }],
      ['prefix', { client, prefix: 'é'.repeat(104) }],
      ['prefix', { client, prefix: 'has space:' }],
      ['prefix', { client, prefix: 'new\nline' }],
      ['servers', { client, servers: 'localhost:11211' }],
      ['ttl', { client, ttl: 3600 }],
      ['expires', { client, expires: 3600 }],
      ['timeout', { client, timeout: 1 }],
      ['prefx', { client, prefx: 'a:' }]
    ]
    for (const [i, [name, options]] of bad.entries()) {
      t.throws(() => new MemcachedStore(options as MemcachedStoreOptions), {
        code: 'FST_SESS_INVALID_OPTION', message: new RegExp(`"MemcachedStore ${name}"`)
      }, `bad ${name} #${i}`)
    }
    t.throws(() => new MemcachedStore({ client, prefx: 'a:' } as unknown as MemcachedStoreOptions), { message: /did you mean "prefix"/ })
    t.throws(() => new MemcachedStore({ client, ttl: 1 } as unknown as MemcachedStoreOptions), { message: /idleTimeout and absoluteTimeout/ })
    t.throws(() => new MemcachedStore({ client: { perform () {}, incrSeq () {}, options: { failover: true } } as unknown as MemjsClient }), { message: /failover/ })
    const quiet = counting(client)
    const store = new MemcachedStore({ client: quiet, prefix: 'x'.repeat(207) })
    t.ok(new MemcachedStore({ client: quiet, prefix: '' }), 'an empty prefix')
    await store.close()
    t.same(quiet.sent, [], 'nothing sent by constructing and closing')
  })

  t.test('close() leaves the given client open', async (t) => {
    const store = new MemcachedStore({ client })
    await store.close()
    t.equal((await client.set('after-close', 'yes', {})), true)
    t.equal((await client.get('after-close')).value?.toString(), 'yes')
  })
}

function itemTests (t: tap.Test, server: MemcachedServer, client: memjs.Client): void {
  t.test('one item per session under the prefix: the record as JSON, the data last', async (t) => {
    const prefix = `items${process.pid}:`
    const store = new MemcachedStore({ client, prefix })
    const [key, anonymous] = [uniqueKey(), uniqueKey()]
    const written = { ...record({ nul: 'a\u0000b', order: { z: 1, a: 2 } }), user: 'digest-of-ada' }
    t.equal(await store.set(key, written, 0), true)
    await store.set(anonymous, record({}), 0)
    const mine = (await server.items()).filter((item) => item.key.startsWith(prefix))
    t.same(mine.map((item) => item.key).sort(), [prefix + key, prefix + anonymous].sort())
    t.equal(mine.find((item) => item.key === prefix + key)?.value,
      `{"v":1,"c":${written.createdAt},"e":${written.expiresAt},"u":"digest-of-ada","d":{"nul":"a\\u0000b","order":{"z":1,"a":2}}}`)
    t.notOk(mine.find((item) => item.key === prefix + anonymous)?.value.includes('"u"'), 'no user, no field')
    t.same(await new MemcachedStore({ client }).get(key), undefined, 'another prefix, another key')
  })

  t.test('a value the store did not write is an unusable record, to get and to a write over it', async (t) => {
    const store = new MemcachedStore({ client })
    const [notJson, notRecord, foreign] = [uniqueKey(), uniqueKey(), uniqueKey()]
    await client.set(`sess:${notJson}`, '{"v":1,', {})
    await client.set(`sess:${notRecord}`, '"text"', {})
    await client.set(`sess:${foreign}`, '{}', {})
    await t.rejects(store.get(notJson), { code: 'FST_SESS_UNUSABLE_RECORD', message: /is not JSON/ })
    await t.rejects(store.get(notRecord), { code: 'FST_SESS_UNUSABLE_RECORD', message: /not a record this store wrote/ })
    await t.rejects(store.set(notJson, record({}, 2), 1), { code: 'FST_SESS_UNUSABLE_RECORD' })
    // Fields of the wrong type reach the plugin, which checks every record it gets.
    t.same(await store.get(foreign), { data: undefined, version: undefined, createdAt: undefined, expiresAt: undefined })
    t.equal(await store.set(foreign, record({}), 0), false, 'a create does not replace it')
    await store.destroy(foreign)
    t.equal(await store.set(foreign, record({}), 0), true, 'destroy removes it')
  })

  t.test('touch keeps the value: data, version, createdAt and user, byte for byte but the expiry', async (t) => {
    const store = new MemcachedStore({ client })
    const key = uniqueKey()
    const written = { ...record(JSON.parse('{"list":[1,"two",{"three":3}],"__proto__":{"own":true}}')), user: 'u' }
    await store.set(key, written, 0)
    const before = (await server.items()).find((item) => item.key === `sess:${key}`)?.value as string
    const later = Date.now() + 3_600_000
    t.equal(await store.touch(key, later), true)
    const after = (await server.items()).find((item) => item.key === `sess:${key}`)?.value
    t.equal(after, before.replace(`"e":${written.expiresAt}`, `"e":${later}`))
    t.same(await store.get(key), { ...written, expiresAt: later })
    const ttl = await server.ttl(`sess:${key}`) as number
    t.ok(ttl > 3590 && ttl <= 3600, `the server keeps it for the new hour (${ttl} s)`)
  })
}

function casTests (t: tap.Test, server: MemcachedServer, client: memjs.Client): void {
  t.test('a read then a write: one get and one compare-and-set; a new session one add', async (t) => {
    const quiet = counting(client)
    const store = new MemcachedStore({ client: quiet })
    const key = uniqueKey()
    await store.set(key, record({ a: 1 }), 0)
    t.same(quiet.sent, ['add'], 'a create is one add, no read first')
    quiet.sent.length = 0
    const read = await store.get(key)
    await store.set(key, { ...record({ a: 2 }, 2), createdAt: read?.createdAt as number }, 1)
    await store.set(key, record({ a: 3 }, 3), 2)
    t.same(quiet.sent, ['get', 'replace', 'replace'], 'the token of the read, then of the write, is used')
    quiet.sent.length = 0
    t.equal(await new MemcachedStore({ client: quiet }).set(key, record({ a: 4 }, 4), 3), true, 'another store: no token yet')
    t.same(quiet.sent, ['get', 'replace'])
    quiet.sent.length = 0
    await store.touch(key, Date.now() + 60_000)
    await store.destroy(key)
    t.same(quiet.sent, ['get', 'replace', 'delete'], 'a touch reads and rewrites; a destroy is one delete')
  })

  t.test('writes are sent once (retries 1); reads and deletes with the client\'s own retries', async (t) => {
    // [opcode, retries] of every request: 0 get, 2 add, 3 replace, 4 delete.
    const sent: Array<[number, number | undefined]> = []
    const store = new MemcachedStore({
      client: {
        get seq () { return client.seq },
        incrSeq: () => client.incrSeq(),
        perform (key, request, seq, callback, retries) {
          sent.push([request[1], retries])
          client.perform(key, request, seq, callback, retries)
        }
      }
    })
    const key = uniqueKey()
    await store.set(key, record({ n: 1 }), 0)
    await store.get(key)
    await store.set(key, record({ n: 2 }, 2), 1)
    await store.touch(key, Date.now() + 60_000)
    await store.destroy(key)
    t.same(sent, [[2, 1], [0, undefined], [3, 1], [0, undefined], [3, 1], [4, undefined]])
  })

  t.test('a token made stale by a touch elsewhere: the write reads again and succeeds', async (t) => {
    const key = uniqueKey()
    const other = new MemcachedStore({ client })
    const store = new MemcachedStore({ client: meddling(client, 1, () => other.touch(key, Date.now() + 120_000)) })
    await store.set(key, record({ n: 1 }), 0)
    t.equal(await store.set(key, record({ n: 2 }, 2), 1), true, 'the version is still 1: written')
    t.same((await other.get(key))?.data, { n: 2 })
  })

  t.test('a write landing between the read and the compare-and-set: a conflict, nothing changed', async (t) => {
    const key = uniqueKey()
    const other = new MemcachedStore({ client })
    const store = new MemcachedStore({ client: meddling(client, 1, () => other.set(key, record({ n: 'other' }, 2), 1)) })
    await store.set(key, record({ n: 1 }), 0)
    t.equal(await store.set(key, record({ n: 'mine' }, 2), 1), false)
    t.same((await other.get(key))?.data, { n: 'other' })
  })

  t.test('a record destroyed between the read and the compare-and-set: a conflict, nothing stored', async (t) => {
    const key = uniqueKey()
    const other = new MemcachedStore({ client })
    const store = new MemcachedStore({ client: meddling(client, 1, () => other.destroy(key)) })
    await store.set(key, record({ n: 1 }), 0)
    await store.get(key)
    t.equal(await store.set(key, record({ n: 2 }, 2), 1), false)
    t.equal(await other.get(key), undefined)
    t.equal(await server.ttl(`sess:${key}`), undefined, 'the server holds nothing')
  })

  t.test('a create over an expired record that vanishes before the compare-and-set: added', async (t) => {
    const key = uniqueKey()
    const other = new MemcachedStore({ client })
    const store = new MemcachedStore({ client: meddling(client, 1, () => other.destroy(key)) })
    await store.set(key, record({ old: true }), 0)
    // Past the record's expiry by the application's clock; memcached still holds it.
    const now = Date.now
    t.capture(Date, 'now', () => now() + 120_000)
    const fresh = record({ fresh: true })
    t.equal(await store.set(key, fresh, 0), true)
    t.same(await store.get(key), fresh)
  })

  t.test('touches racing every round of a write: a conflict after bounded rounds; of a touch: done', async (t) => {
    const key = uniqueKey()
    const other = new MemcachedStore({ client })
    const quiet = counting(meddling(client, 100, () => other.touch(key, Date.now() + 120_000)))
    const store = new MemcachedStore({ client: quiet })
    await store.set(key, record({ n: 1 }), 0)
    t.equal(await store.set(key, record({ n: 2 }, 2), 1), false, 'each round lost: a conflict')
    t.equal(quiet.sent.filter((op) => op === 'replace').length, 10, 'ten rounds')
    t.equal(await store.touch(key, Date.now() + 240_000), true, 'a touch that lost every round: the record is live')
    t.same((await other.get(key))?.data, { n: 1 })
  })

  t.test('a client past 2^31 requests: memjs turns its sequence number negative, the store keeps working', async (t) => {
    // memjs wraps seq with `&= 0xffffffff`, which makes it a signed 32-bit number: after
    // 2^31 requests it is negative, and a binary header's opaque field cannot hold it.
    const worn = clientOn(t, [server]) as memjs.Client & { seq: number }
    worn.seq = 2 ** 31 - 3
    const store = new MemcachedStore({ client: worn })
    const key = uniqueKey()
    t.equal(await store.set(key, record({ n: 1 }), 0), true)
    for (let version = 1; version < 6; version++) {
      t.equal((await store.get(key))?.version, version)
      t.equal(await store.set(key, record({ n: version + 1 }, version + 1), version), true, `write ${version + 1}`)
    }
    t.ok(worn.seq < 0, `the client's seq went negative (${worn.seq})`)
    t.equal(await store.touch(key, Date.now() + 60_000), true)
    await store.destroy(key)
    t.equal(await store.get(key), undefined)
  })

  t.test('remembers a bounded number of tokens', async (t) => {
    const quiet = counting(client)
    const store = new MemcachedStore({ client: quiet })
    const keys = Array.from({ length: 10_001 }, () => uniqueKey())
    for (let i = 0; i < keys.length; i += 500) await Promise.all(keys.slice(i, i + 500).map((key) => store.set(key, record({}), 0)))
    quiet.sent.length = 0
    await store.set(keys[keys.length - 1], record({}, 2), 1)
    t.same(quiet.sent, ['replace'], 'the latest token is kept')
    quiet.sent.length = 0
    await store.set(keys[0], record({}, 2), 1)
    t.same(quiet.sent, ['get', 'replace'], 'the first was let go')
  })
}

function expiryTests (t: tap.Test, server: MemcachedServer, client: memjs.Client): void {
  t.test('expirations: seconds from now up to 30 days, a Unix time beyond, never 0', async (t) => {
    const store = new MemcachedStore({ client })
    const cases: Array<[string, number, number]> = [
      ['one hour', 3600, 3600],
      ['exactly 30 days', 30 * DAY_S, 30 * DAY_S],
      ['30 days and a second', 30 * DAY_S + 1, 30 * DAY_S + 1],
      ['400 days', 400 * DAY_S, 400 * DAY_S]
    ]
    for (const [name, seconds, expected] of cases) {
      const key = uniqueKey()
      const written = { ...record({}), expiresAt: Date.now() + seconds * 1000 }
      await store.set(key, written, 0)
      const ttl = await server.ttl(`sess:${key}`) as number
      // memcached's own clock ticks once a second and lags a little: absolute times read a
      // few seconds long. Read as a Unix time, a relative 30 days and more would be long past.
      t.ok(Math.abs(ttl - expected) <= 5, `${name}: kept ${ttl} s`)
      t.same(await store.get(key), written, `${name}: live`)
    }
    const past = uniqueKey()
    t.equal(await store.set(past, { ...record({}), expiresAt: Date.now() - 1000 }, 0), true)
    t.equal(await store.get(past), undefined, 'a record written already expired is missing')
    const ttl = await server.ttl(`sess:${past}`)
    t.ok(ttl === undefined || (ttl >= 0 && ttl <= 1), `and the server keeps it a second at most, never for ever (${ttl})`)
    const notATime = uniqueKey()
    await store.set(notATime, { ...record({}), expiresAt: Number.NaN }, 0)
    t.not(await server.ttl(`sess:${notATime}`), -1, 'an expiry that is not a time is not kept for ever')
  })

  t.test('memcached drops an expired item by its own clock', async (t) => {
    const store = new MemcachedStore({ client })
    const key = uniqueKey()
    // Three seconds: memcached counts whole seconds on a clock that lags, so an item given
    // one second can be gone before the first look.
    await store.set(key, record({}, 1, 3000), 0)
    t.ok(await server.ttl(`sess:${key}`) !== undefined, 'held at first')
    // A real wait for a real server's TTL.
    await waitFor('memcached to drop the item', async () => await server.ttl(`sess:${key}`) === undefined, 10_000)
    t.equal(await store.get(key), undefined)
  })
}

function sizeTests (t: tap.Test): void {
  t.test('a value over the item size limit: a coded error naming its size, the old value kept', async (t) => {
    const server = await startMemcached() // the default item size, 1 MB
    t.teardown(() => server.stop())
    const client = server.client()
    const store = new MemcachedStore({ client })
    const key = uniqueKey()
    const small = record({ small: true })
    await store.set(key, small, 0)
    const big = record({ big: 'x'.repeat(1024 * 1024) }, 2)
    const size = Buffer.byteLength(JSON.stringify({ v: 2, c: big.createdAt, e: big.expiresAt, d: big.data }))
    await t.rejects(store.set(key, big, 1), {
      code: 'FST_SESS_RECORD_TOO_LARGE',
      statusCode: 500,
      message: `fastify-sessions: the session record is ${size} bytes, more than the store accepts (memcached's item size limit: 1 MB unless the server was started with a larger -I); keep less in the session`
    })
    await t.rejects(store.set(uniqueKey(), { ...big, version: 1 }, 0), { code: 'FST_SESS_RECORD_TOO_LARGE' })
    t.same(await store.get(key), small, 'the record before the refused write, still there')
    t.equal(await store.set(key, record({ after: true }, 2), 1), true, 'and the connection still works')
    // Measured on memcached 1.6.18: with -I 1m the largest value stored under a 48-byte key.
    const limit = await largestValue(client)
    t.comment(`largest value stored with the default item size under a 48-byte key: ${limit} bytes`)
    t.ok(limit > 1_040_000 && limit < 1024 * 1024, `just under 1 MB (${limit})`)
  })

  t.test('any other error status rejects, naming the status', async (t) => {
    // -M: a full server refuses writes instead of evicting; -m 2: two slab pages of 1 MB.
    const server = await startMemcached(['-M', '-m', '2'])
    t.teardown(() => server.stop())
    const store = new MemcachedStore({ client: server.client() })
    let refused: unknown
    for (let i = 0; i < 200 && refused === undefined; i++) {
      await store.set(uniqueKey(), record({ fill: 'x'.repeat(100_000) }), 0).catch((err: unknown) => { refused = err })
    }
    t.match(refused, { message: /^memcached answered status 130: / }, 'out of memory (0x82)')
  })
}

/** The largest value the client's server stores under a key of the store's size, by bisection. */
async function largestValue (client: memjs.Client): Promise<number> {
  const key = `sess:${uniqueKey()}`
  let [low, high] = [1_000_000, 1024 * 1024]
  while (high - low > 1) {
    const middle = Math.floor((low + high) / 2)
    if (await client.set(key, Buffer.alloc(middle, 97), {}).catch(() => false)) low = middle
    else high = middle
  }
  return low
}

function twoServerTests (t: tap.Test, servers: MemcachedServer[], both: memjs.Client): void {
  t.test('two servers: keys spread over both, each read and write meets its key on one', async (t) => {
    const prefix = `spread${process.pid}:`
    const store = new MemcachedStore({ client: both, prefix })
    const keys = Array.from({ length: 40 }, () => uniqueKey())
    t.same(await Promise.all(keys.map((key) => store.set(key, record({ key }), 0))), keys.map(() => true))
    const held = await Promise.all(servers.map(async (server) => (await server.items()).filter((item) => item.key.startsWith(prefix)).map((item) => item.key)))
    t.ok(held[0].length > 0 && held[1].length > 0, `both servers hold some (${held[0].length} and ${held[1].length})`)
    t.equal(held[0].length + held[1].length, keys.length, 'each key on one server only')
    t.same(new Set([...held[0], ...held[1]]), new Set(keys.map((key) => prefix + key)))
    for (const key of keys) t.equal(await store.set(key, record({ key, n: 2 }, 2), 1), true)
    t.same((await Promise.all(keys.map((key) => store.get(key)))).map((r) => r?.data.n), keys.map(() => 2))
  })
}

import t from 'tap'
import { conformance, type ConformanceOptions, type RegisterCase } from '../../src/testing'
import type { SessionRecord, SessionStore, UserSession } from '../../src/store'
import { MapStore } from '../helpers/map-store'

// The suite checked against stores known to be right and stores known to break one rule
// each: the right ones must pass every case, each broken one must fail exactly the cases
// about its rule, with messages naming the case and what was expected.

const tapTest = (t: tap.Test): RegisterCase => (name, fn) => t.test(name, fn)

type SuiteOptions = Omit<ConformanceOptions, 'test'>

/** Runs every case one after the other, as a runner would, and answers each one's error, if any. */
async function outcomes (options: SuiteOptions): Promise<Map<string, Error | undefined>> {
  const cases: Array<[string, () => Promise<void>]> = []
  conformance({ shortTtlMs: 50, ...options, test: (name, fn) => cases.push([name, fn]) })
  const results = new Map<string, Error | undefined>()
  for (const [name, fn] of cases) results.set(name, await fn().then(() => undefined, (err: Error) => err))
  return results
}

/** The names of the failed cases, checked to name themselves in their messages. */
function failedCases (t: tap.Test, results: Map<string, Error | undefined>): string[] {
  const failed = [...results].filter(([, err]) => err !== undefined)
  for (const [name, err] of failed) t.ok(err?.message.startsWith(`${name}: `), `the error names its case: ${err?.message.slice(0, 300)}`)
  return failed.map(([name]) => name)
}

/** Checks that exactly the cases whose names contain these fragments failed. */
async function expectFailures (t: tap.Test, options: SuiteOptions, fragments: string[]): Promise<Map<string, Error | undefined>> {
  const results = await outcomes(options)
  const failed = failedCases(t, results)
  t.same(failed.map((name) => fragments.filter((fragment) => name.includes(fragment))).flat().sort(), [...fragments].sort(), 'each expected failure, once')
  t.equal(failed.length, fragments.length, `failed: ${failed.join(' | ')}`)
  return results
}

function messageOf (results: Map<string, Error | undefined>, fragment: string): string {
  return [...results].find(([name]) => name.includes(fragment))?.[1]?.message ?? ''
}

// The broken stores: MapStore with one rule broken each.

class IgnoresVersion extends MapStore {
  override async set (key: string, record: SessionRecord): Promise<boolean> {
    this.records.set(key, structuredClone(record))
    return true
  }
}

class ReturnsExpired extends MapStore {
  override async get (key: string): Promise<SessionRecord | undefined> {
    const found = this.records.get(key)
    return found && structuredClone(found)
  }
}

class TouchCreates extends MapStore {
  override async touch (key: string, expiresAt: number): Promise<boolean> {
    if (!await super.touch(key, expiresAt)) this.records.set(key, { data: {}, version: 1, createdAt: Date.now(), expiresAt })
    return true
  }
}

class SharesObjects extends MapStore {
  override async get (key: string): Promise<SessionRecord | undefined> {
    return this.live(key)
  }

  override async set (key: string, record: SessionRecord, expectedVersion: number): Promise<boolean> {
    if ((this.live(key)?.version ?? 0) !== expectedVersion) return false
    this.records.set(key, record)
    return true
  }
}

class RefusesUpdates extends MapStore {
  override async set (key: string, record: SessionRecord, expectedVersion: number): Promise<boolean> {
    return expectedVersion === 0 && super.set(key, record, expectedVersion)
  }
}

class ListsEveryone extends MapStore {
  override async listUser (): Promise<UserSession[]> {
    const keys = [...this.records.keys()].filter((key) => this.live(key) !== undefined)
    return keys.map((key) => ({ key, record: structuredClone(this.records.get(key) as SessionRecord) }))
  }
}

/** Only the methods named, taken from a MapStore. */
function only (names: Array<keyof MapStore>): SessionStore {
  const store = new MapStore()
  return Object.fromEntries(names.map((name) => [name, store[name].bind(store)])) as unknown as SessionStore
}

t.test('a correct store passes every case, run by tap', async (t) => {
  conformance({ test: tapTest(t), store: () => new MapStore(), name: 'MapStore' })
})

t.test('a correct store passes every case on a server clock, waiting for real', async (t) => {
  conformance({ test: tapTest(t), store: () => new MapStore(), name: 'MapStore, server clock', clock: 'server', shortTtlMs: 100 })
})

t.test('correct stores without touch or without the index, one answering user: undefined, pass', async (t) => {
  const bare = only(['get', 'set', 'destroy'])
  const store: SessionStore = { ...bare, get: async (key) => { const found = await bare.get(key); return found && { user: undefined, ...found } } }
  const results = await outcomes({ store: () => store })
  t.same(failedCases(t, results), [])
  t.ok(results.size >= 25, `${results.size} cases`)
  t.same(failedCases(t, await outcomes({ store: () => only(['get', 'set', 'destroy', 'listUser', 'destroyUser']) })), [], 'with the index but without touch')
})

t.test('a store ignoring expectedVersion fails the compare-and-set cases', async (t) => {
  const results = await expectFailures(t, { store: () => new IgnoresVersion() }, [
    'exactly one succeeds', 'refuses a wrong or stale', 'lose no update', 'an expired record is missing'
  ])
  t.match(messageOf(results, 'exactly one succeeds'), 'number of the 25 concurrent creates that resolved true: expected 1, got 25')
  t.match(messageOf(results, 'refuses a wrong'), 'set with expectedVersion 0 over a live record: expected false, got true')
})

t.test('a store returning expired records fails the expiry cases', async (t) => {
  const results = await expectFailures(t, { store: () => new ReturnsExpired() }, [
    'an expired record is missing', 'a record expires for real', 'touch moves the expiry only'
  ])
  t.match(messageOf(results, 'expires for real'), /get \d+ ms later, by the real clock: expected undefined, got \{/)
})

t.test('a store whose touch creates records fails the touch cases', async (t) => {
  const results = await expectFailures(t, { store: () => new TouchCreates() }, [
    'touch never creates a record', 'an expired record is missing'
  ])
  t.match(messageOf(results, 'touch never creates'), 'touch of a key never written: expected false, got true')
})

t.test('a store handing out its own objects fails the ownership cases', async (t) => {
  await expectFailures(t, { store: () => new SharesObjects() }, [
    'get returns objects the caller owns', 'return distinct objects', 'set keeps no part'
  ])
})

t.test('a store refusing every update fails, and its writers give up instead of looping', async (t) => {
  const results = await outcomes({ store: () => new RefusesUpdates() })
  t.match(messageOf(results, 'lose no update'), 'a writer gave up after 120 refused sets')
  t.match(messageOf(results, 'round-trips: data'), 'set with expectedVersion equal to the stored version: expected true, got false')
})

t.test('a store with listUser but no destroyUser fails', async (t) => {
  const results = await expectFailures(t, { store: () => only(['get', 'set', 'destroy', 'touch', 'listUser']) }, ['listUser and destroyUser together'])
  t.match(messageOf(results, 'together'), 'expected both methods or neither, got only listUser')
  await expectFailures(t, { store: () => only(['get', 'set', 'destroy', 'destroyUser']) }, ['listUser and destroyUser together'])
})

t.test("a store whose listUser lists other users' records fails the index cases", async (t) => {
  const results = await expectFailures(t, { store: () => new ListsEveryone() }, [
    'listUser lists the live records of that user only', 'destroyUser removes exactly', 'an expired record leaves the index'
  ])
  t.match(messageOf(results, 'listUser lists the live'), "listUser: ada's two records")
})

t.test('errors of the store, of creating it and of closing it fail the case, naming it', async (t) => {
  const unreachable = await outcomes({ store: () => { throw new Error('connection refused') }, name: 'down' })
  t.ok([...unreachable.values()].every((err) => /^down: .+: unexpected error: connection refused$/.test(err?.message ?? '')), 'every case fails')
  const rejects: SessionStore = { ...new MapStore(), get: () => Promise.reject(new Error('no answer')), set: async () => true, destroy: async () => {} }
  t.match(messageOf(await outcomes({ store: () => rejects }), 'never written'), /never written reads as missing: unexpected error: no answer$/)
  const notAnError: SessionStore = { ...rejects, get: () => Promise.reject('a string') } // eslint-disable-line prefer-promise-reject-errors
  t.match(messageOf(await outcomes({ store: () => notAnError }), 'never written'), /unexpected error: a string$/)

  const closeFails = async (): Promise<void> => { throw new Error('close failed') }
  const afterPass = await outcomes({ store: () => new MapStore(), close: closeFails })
  t.match(messageOf(afterPass, 'never written'), /unexpected error: close failed$/, 'a close failing after a passing case fails it')
  const afterFail = await outcomes({ store: () => new IgnoresVersion(), close: closeFails })
  t.match(messageOf(afterFail, 'exactly one succeeds'), 'expected 1, got 25', 'the failure of the case outranks that of close')
})

t.test('close: store.close() by default, or the given close instead', async (t) => {
  const closed: string[] = []
  const closing = (): SessionStore => Object.assign(new MapStore(), { close: async () => { closed.push('store') } })
  await outcomes({ store: closing })
  t.ok(closed.length >= 25 && closed.every((by) => by === 'store'), 'each case closes its store')
  closed.length = 0
  await outcomes({ store: closing, close: async () => { closed.push('option') } })
  t.ok(closed.length >= 25 && closed.every((by) => by === 'option'), 'the close option replaces store.close()')
})

t.test('the fake clock is put back after every case, and refuses two cases at once', async (t) => {
  const realNow = Date.now
  const cases: Array<() => Promise<void>> = []
  conformance({ test: (_, fn) => cases.push(fn), store: () => new MapStore() })
  const [first, second] = await Promise.allSettled([cases[0](), cases[1]()])
  t.equal(first.status, 'fulfilled')
  t.match(second.status === 'rejected' && String(second.reason), /another case holds the fake clock/)
  await outcomes({ store: () => new IgnoresVersion() })
  t.equal(Date.now, realNow, 'Date.now is the real one again, after passing and failing cases')
})

t.test('options are checked, by name', async (t) => {
  const test: RegisterCase = () => {}
  const store = (): SessionStore => new MapStore()
  const bad: Array<[unknown, RegExp]> = [
    [null, /options must be an object/],
    [{ test, store, shortTtl: 2000 }, /unknown option shortTtl/],
    [{ store }, /test must be a function/],
    [{ test }, /store must be a function/],
    [{ test, store, close: 'yes' }, /close must be a function/],
    [{ test, store, name: 1 }, /name must be a string/],
    [{ test, store, clock: 'process' }, /clock must be 'fake' or 'server'/],
    [{ test, store, shortTtlMs: 0.5 }, /shortTtlMs must be a whole number/]
  ]
  for (const [options, message] of bad) t.throws(() => conformance(options as ConformanceOptions), { name: 'TypeError', message }, String(message))
})

import t from 'tap'
import type { Pool } from 'pg'
import { PostgresStore, type PostgresQueryable, type PostgresResult, type PostgresStoreOptions } from '../../src/index'
import { conformance } from '../../src/testing'
import { heldTimers } from '../helpers/held-timers'
import { record, uniqueKey } from '../helpers/record'
import { postgresUnavailable, startPostgres, type PostgresServer } from '../helpers/postgres-server'

let sequence = 0
/** A table name no other test uses. */
function freshTable (): string {
  return `t${process.pid}_${sequence++}`
}

/** A pool that records the statements sent through it. */
function counting (pool: PostgresQueryable): PostgresQueryable & { sent: string[] } {
  const sent: string[] = []
  return {
    sent,
    query: (text: string, values?: unknown[]) => {
      sent.push(text)
      return pool.query(text, values)
    }
  }
}

if (!postgresUnavailable(t)) {
  const server = startPostgres()
  t.teardown(async () => (await server).stop())
  t.test('PostgresStore', async (t) => storeTests(t, await server))
}

async function storeTests (t: tap.Test, server: PostgresServer): Promise<void> {
  const pool = server.pool()
  conformance({
    test: (name, fn) => t.test(name, fn),
    name: 'PostgresStore',
    store: () => new PostgresStore({ pool, table: freshTable(), createTable: true, prune: false })
  })
  // A plain adapter (postgres.js in the README) gets plain text statements: the same contract.
  const adapter: PostgresQueryable = { query: (text, values) => pool.query(text, values) }
  conformance({
    test: (name, fn) => t.test(name, fn),
    name: 'PostgresStore through a plain query adapter',
    store: () => new PostgresStore({ pool: adapter, table: freshTable(), createTable: true, prune: false })
  })
  optionTests(t, pool)
  preparedTests(t, pool)
  rowTests(t, server, pool)
  createTableTests(t, server, pool)
  pruneTests(t, pool)
}

function optionTests (t: tap.Test, pool: Pool): void {
  t.test('rejects bad options by name; constructing sends nothing', async (t) => {
    const bad: Array<[string, unknown]> = [
      ['options', null],
      ['pool', {}],
      ['pool', { pool: { connect: () => {} } }],
      ['table', { pool, table: 'sessions; DROP TABLE users' }],
      ['table', { pool, table: 'Sessions' }],
      ['table', { pool, table: 'a.b.c' }],
      ['table', { pool, table: '"quoted"' }],
      ['table', { pool, table: 'x'.repeat(49) }],
      ['table', { pool, table: 7 }],
      ['createTable', { pool, createTable: 'yes' }],
      ['prune', { pool, prune: 0 }],
      ['prune', { pool, prune: true }],
      ['prune', { pool, prune: 900_000_000 }],
      ['onError', { pool, onError: 'log' }],
      ['prepare', { pool, prepare: 'yes' }],
      ['tableName', { pool, tableName: 'x' }],
      ['creatTable', { pool, creatTable: true }]
    ]
    for (const [i, [name, options]] of bad.entries()) {
      t.throws(() => new PostgresStore(options as PostgresStoreOptions), {
        code: 'FST_SESS_INVALID_OPTION', message: new RegExp(`"PostgresStore ${name}"`)
      }, `bad ${name} #${i}`)
    }
    t.throws(() => new PostgresStore({ pool, creatTable: true } as unknown as PostgresStoreOptions), { message: /did you mean "createTable"/ })
    const quiet = counting(pool)
    const store = new PostgresStore({ pool: quiet, table: 'app.sessions_2', createTable: true })
    await store.close()
    t.same(quiet.sent, [], 'no statement before the first call')
  })

  t.test('close() leaves the given pool open', async (t) => {
    const store = new PostgresStore({ pool })
    await store.close()
    t.same((await pool.query('SELECT 1 AS one')).rows, [{ one: 1 }])
  })
}

type Sent = string | { name: string, text: string, values: unknown[] }

/** The pool's own query, recording what the store sends; `connect` only when asked for. */
function recording (pool: Pool, withConnect: boolean): PostgresQueryable & { sent: Sent[] } {
  const sent: Sent[] = []
  const query = (text: Sent, values?: unknown[]): Promise<PostgresResult> => {
    sent.push(text)
    return (pool.query as (text: Sent, values?: unknown[]) => Promise<PostgresResult>)(text, values)
  }
  return withConnect ? { sent, query, connect: () => pool.connect() } as PostgresQueryable & { sent: Sent[] } : { sent, query }
}

function preparedTests (t: tap.Test, pool: Pool): void {
  t.test('named statements for a pool with connect(), plain text for an adapter; prepare decides', async (t) => {
    const cases: Array<[string, boolean, boolean | undefined, boolean]> = [
      ['a pg pool', true, undefined, true],
      ['an adapter', false, undefined, false],
      ['a pg pool, prepare: false', true, false, false],
      ['an adapter that takes query configs, prepare: true', false, true, true]
    ]
    for (const [what, withConnect, prepare, named] of cases) {
      const spy = recording(pool, withConnect)
      const store = new PostgresStore({ pool: spy, table: freshTable(), createTable: true, prune: false, prepare })
      const key = uniqueKey()
      t.equal(await store.set(key, record({ n: 1 }), 0), true, `${what}: written`)
      t.same((await store.get(key))?.data, { n: 1 }, `${what}: read back`)
      const [create, ...rest] = spy.sent
      t.type(create, 'string', `${what}: the DDL is plain text`)
      t.ok(rest.length === 2 && rest.every((s) => (typeof s === 'object') === named), `${what}: ${named ? 'named' : 'plain'} statements`)
    }
  })

  t.test('stores on two tables share one pool: each statement has a name of its own', async (t) => {
    const spy = recording(pool, true)
    const stores = [freshTable(), freshTable()].map((table) => new PostgresStore({ pool: spy, table, createTable: true, prune: false }))
    const key = uniqueKey()
    for (const [i, store] of stores.entries()) t.equal(await store.set(key, record({ i }), 0), true)
    for (const [i, store] of stores.entries()) t.same((await store.get(key))?.data, { i })
    const names = spy.sent.flatMap((s) => typeof s === 'object' ? [s.name] : [])
    t.equal(new Set(names).size, 4, 'an insert and a get per table')
    t.ok(names.every((name) => name.length <= 63), 'within PostgreSQL\'s identifier length')
  })
}

function rowTests (t: tap.Test, server: PostgresServer, pool: Pool): void {
  t.test('one row per session: the key, version, data as text, times in ms, the user', async (t) => {
    const table = freshTable()
    const store = new PostgresStore({ pool, table, createTable: true, prune: false })
    const key = uniqueKey()
    const written = { ...record({ nul: 'a\u0000b', order: { z: 1, a: 2 } }), user: 'digest-of-ada' }
    t.equal(await store.set(key, written, 0), true)
    const { rows } = await pool.query(`SELECT * FROM ${table}`)
    t.same(rows, [{
      key, version: 1, data: '{"nul":"a\\u0000b","order":{"z":1,"a":2}}',
      created_at: String(written.createdAt), expires_at: String(written.expiresAt), user_digest: 'digest-of-ada'
    }], 'key order and NUL kept in text')
    const types = await pool.query('SELECT column_name, data_type FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position', [table])
    t.same(types.rows.map((r) => r.data_type), ['text', 'integer', 'text', 'bigint', 'bigint', 'text'])
    const indexes = await pool.query('SELECT indexname FROM pg_indexes WHERE tablename = $1 ORDER BY indexname', [table])
    t.same(indexes.rows.map((r) => r.indexname), [`${table}_expires_at_idx`, `${table}_pkey`, `${table}_user_digest_idx`])
  })

  t.test('a row whose data is not JSON is an unusable record; a listing leaves it out', async (t) => {
    const table = freshTable()
    const store = new PostgresStore({ pool, table, createTable: true, prune: false })
    const [bad, good] = [uniqueKey(), uniqueKey()]
    await store.set(bad, { ...record({}), user: 'u' }, 0)
    await store.set(good, { ...record({ ok: true }), user: 'u' }, 0)
    await pool.query(`UPDATE ${table} SET data = '{"a":' WHERE key = $1`, [bad])
    await t.rejects(store.get(bad), { code: 'FST_SESS_UNUSABLE_RECORD' })
    t.same((await store.listUser('u')).map((s) => s.key), [good])
    t.equal(await store.destroyUser('u'), 2, 'both rows were live')
  })

  t.test('an expiry is stored in whole milliseconds, rounded up; a bad one writes nothing', async (t) => {
    const table = freshTable()
    const store = new PostgresStore({ pool, table, createTable: true, prune: false })
    const key = uniqueKey()
    const expiresAt = Date.now() + 60_000.25
    await store.set(key, { ...record({}), expiresAt }, 0)
    t.equal((await store.get(key))?.expiresAt, Math.ceil(expiresAt))
    await t.rejects(store.set(uniqueKey(), { ...record({}), expiresAt: Number.NaN }, 0))
    t.equal((await pool.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n, 1)
  })

  t.test('of 25 concurrent creates over an expired row not pruned yet, exactly one takes it over', async (t) => {
    // Each store on a connection of its own, so the inserts really meet on the row's lock.
    const pools = Array.from({ length: 25 }, () => server.pool({ max: 1 }))
    t.teardown(() => Promise.all(pools.map((own) => own.end())))
    const table = freshTable()
    const stores = pools.map((own) => new PostgresStore({ pool: own, table, createTable: true, prune: false }))
    const key = uniqueKey()
    await stores[0].set(key, { ...record({ old: true }), user: 'before' }, 0)
    await pool.query(`UPDATE ${table} SET expires_at = $2 WHERE key = $1`, [key, Date.now() - 1000])
    const written = await Promise.all(stores.map((store, i) => store.set(key, record({ i }), 0)))
    t.equal(written.filter(Boolean).length, 1)
    const winner = written.indexOf(true)
    const { rows } = await pool.query(`SELECT data, user_digest FROM ${table}`)
    t.same(rows, [{ data: JSON.stringify({ i: winner }), user_digest: null }], 'the winner\'s record, nothing left of the old one')
  })

  t.test('a schema-qualified table', async (t) => {
    await pool.query('CREATE SCHEMA IF NOT EXISTS app')
    const store = new PostgresStore({ pool, table: 'app.sessions', createTable: true, prune: false })
    const key = uniqueKey()
    await store.set(key, record({ a: 1 }), 0)
    t.same((await pool.query('SELECT key FROM app.sessions')).rows, [{ key }])
    t.same((await store.get(key))?.data, { a: 1 })
  })
}

function createTableTests (t: tap.Test, server: PostgresServer, pool: Pool): void {
  t.test('createTable: stores racing on fresh tables all succeed', async (t) => {
    // Each store on a pool of its own, so the DDL really runs on ten connections at once.
    const pools = Array.from({ length: 10 }, () => server.pool({ max: 1 }))
    for (let round = 0; round < 5; round++) {
      const table = freshTable()
      const stores = pools.map((own) => new PostgresStore({ pool: own, table, createTable: true, prune: false }))
      const written = await Promise.all(stores.map((store) => store.set(uniqueKey(), record({}), 0)))
      t.same(written, stores.map(() => true), `round ${round}`)
      t.equal((await pool.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n, 10)
    }
    await Promise.all(pools.map((own) => own.end()))
  })

  t.test('createTable runs once per store; a failed attempt is tried again', async (t) => {
    let failNext = true
    const sent: string[] = []
    const flaky: PostgresQueryable = {
      query: async (text: string, values?: unknown[]): Promise<PostgresResult> => {
        sent.push(text.startsWith('DO') ? 'ddl' : text.split(' ')[0])
        if (failNext && text.startsWith('DO')) {
          failNext = false
          throw new Error('connection refused')
        }
        return await pool.query(text, values)
      }
    }
    const store = new PostgresStore({ pool: flaky, table: freshTable(), createTable: true, prune: false })
    await t.rejects(store.get(uniqueKey()), /connection refused/)
    const key = uniqueKey()
    await Promise.all([store.set(key, record({}), 0), store.get(uniqueKey())])
    await store.get(key)
    t.same(sent, ['ddl', 'ddl', 'INSERT', 'SELECT', 'SELECT'])
  })
}

function pruneTests (t: tap.Test, pool: Pool): void {
  /** A table with `expired` expired rows and `live` live ones. */
  async function filled (expired: number, live: number): Promise<string> {
    const table = freshTable()
    await new PostgresStore({ pool, table, createTable: true, prune: false }).get(uniqueKey())
    const now = Date.now()
    await pool.query(`INSERT INTO ${table} SELECT 'e' || i, 1, '{}', $1::bigint, $1::bigint - i FROM generate_series(0, $2::int - 1) i`, [now, expired])
    await pool.query(`INSERT INTO ${table} SELECT 'l' || i, 1, '{}', $1::bigint, $1::bigint + 60000 FROM generate_series(1, $2::int) i`, [now, live])
    return table
  }
  const count = async (table: string): Promise<number> => (await pool.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n

  t.test('prune() deletes every expired row in batches, and no live one', async (t) => {
    const table = await filled(2500, 10)
    const quiet = counting(pool)
    const store = new PostgresStore({ pool: quiet, table, prune: false })
    t.equal(await store.prune(), 2500)
    t.equal(quiet.sent.length, 3, 'batches of 1000: 1000, 1000, 500')
    t.equal(await count(table), 10)
  })

  t.test('prune() deletes nothing while another process prunes the table', async (t) => {
    const table = await filled(5, 0)
    const store = new PostgresStore({ pool, table, prune: false })
    const other = await pool.connect()
    await other.query('BEGIN')
    await other.query(`SELECT pg_advisory_xact_lock(hashtext('fastify-sessions .${table} prune'))`)
    t.equal(await store.prune(), 0)
    await other.query('COMMIT')
    other.release()
    t.equal(await store.prune(), 5)
  })

  t.test('the timer prunes at a randomized interval, unref\'d, until close()', async (t) => {
    const table = await filled(3, 1)
    const { started, cleared } = heldTimers(t)
    const random = [0, 0.999]
    t.capture(Math, 'random', () => random.shift() ?? 0.5)
    const store = new PostgresStore({ pool, table, prune: 1000 })
    t.same(started.map((s) => [s.ms, s.unref]), [[500_000, true]], 'half the interval at the least')
    await started[0].run()
    t.equal(await count(table), 1, 'the pass deleted the expired rows')
    t.equal(started.length, 2, 'and scheduled the next')
    t.ok(started[1].ms > 1_498_000 && started[1].ms < 1_500_000, 'one and a half times at the most')
    await store.close()
    t.ok(cleared.includes(started[1].timer), 'close() clears the timer')
    await started[1].run()
    t.equal(started.length, 2, 'a pass after close() schedules nothing more')
  })

  t.test('the longest prune interval accepted waits at most what setTimeout can hold', async (t) => {
    // A longer delay would make setTimeout fire after 1 ms: a pass after every pass.
    const { started } = heldTimers(t)
    t.capture(Math, 'random', () => 0.999)
    const store = new PostgresStore({ pool, prune: 2_147_483 })
    t.equal(started[0].ms, 2 ** 31 - 1)
    await store.close()
  })

  t.test('prune: false starts no timer', async (t) => {
    const { started } = heldTimers(t)
    const store = new PostgresStore({ pool, prune: false })
    t.same(started, [])
    await store.close()
  })

  t.test('a failed pass goes to onError, or to a process warning, and never throws', async (t) => {
    const { started } = heldTimers(t)
    const broken: PostgresQueryable = { query: async () => { throw new Error('server gone') } }
    const errors: Error[] = []
    const store = new PostgresStore({ pool: broken, onError: (err) => errors.push(err) })
    await started[0].run()
    t.match(errors, [{ message: 'server gone' }])
    t.equal(started.length, 2, 'the next pass is scheduled all the same')
    await store.close()
    const warnings: unknown[][] = []
    t.capture(process, 'emitWarning', (...args: unknown[]) => { warnings.push(args) })
    const quiet = new PostgresStore({ pool: broken })
    await started[2].run()
    t.match(warnings, [[/could not prune expired sessions: server gone/, 'FastifySessionsWarning']])
    await quiet.close()
  })

  t.test('close() waits for a pass under way', async (t) => {
    const { started } = heldTimers(t)
    let release = (): void => {}
    const slow: PostgresQueryable = {
      query: () => new Promise((resolve) => { release = () => resolve({ rowCount: 0, rows: [] }) })
    }
    const store = new PostgresStore({ pool: slow })
    const pass = started[0].run()
    let closed = false
    const closing = store.close().then(() => { closed = true })
    await new Promise((resolve) => setImmediate(resolve))
    t.equal(closed, false)
    release()
    await Promise.all([pass, closing])
    t.equal(closed, true)
  })
}

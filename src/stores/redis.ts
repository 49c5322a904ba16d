import type { Writable } from 'node:stream'
import type { Cluster, Redis } from 'ioredis'
import { parseJson } from '../json'
import { UnusableRecordError } from '../errors'
import type { SessionRecord, SessionStore, UserSession } from '../store'
import { fail, knownKeys, methods, plainObject } from '../validate'
import {
  COMPARE_AND_SET, DESTROY, DESTROY_IF_USER, DESTROY_USER, FILE, LIST_USER, MEMBERS, TOUCH, UNFILE, type Script
} from './redis-scripts'

/** Turns session data into one string and back. */
export interface RedisSerializer {
  stringify (data: Record<string, unknown>): string
  parse (text: string): Record<string, unknown>
}

export interface RedisStoreOptions {
  /** An ioredis client (standalone, Sentinel or Cluster) that you built and that you close. */
  client: Redis | Cluster
  /** Put before every key. Default `'sess:'`. */
  prefix?: string
  /** Encodes the session data. Default JSON. */
  serializer?: RedisSerializer
}

// The commands this store sends. Typed structurally so both Redis and Cluster fit
// and any client offering the same methods works at runtime.
interface Commands {
  evalsha (sha: string, keys: number, ...args: Array<string | number>): Promise<unknown>
  eval (script: string, keys: number, ...args: Array<string | number>): Promise<unknown>
  hmget (key: string, ...fields: string[]): Promise<Array<string | null>>
}

// A record's hash fields as HMGET answers them: v, c, e, d, u.
type Row = Array<string | null>
const FIELDS = ['v', 'c', 'e', 'd', 'u']

const JSON_SERIALIZER: RedisSerializer = { stringify: JSON.stringify, parse: (text) => parseJson(text) as Record<string, unknown> }

// PEXPIREAT takes whole milliseconds; rounding up never ends a record early.
function wholeMs (time: number): number {
  return Math.ceil(time)
}

// The commands a client must offer: ioredis' Redis and Cluster both do.
const CLIENT_METHODS = ['evalsha', 'eval', 'hmget']

function validate (options: RedisStoreOptions): Required<RedisStoreOptions> {
  const given = plainObject('RedisStore options', options)
  knownKeys('RedisStore ', given, ['client', 'prefix', 'serializer'], {
    commandTimeout: "how long a request waits for Redis is the plugin's storeTimeout option (seconds)"
  })
  if (given.client === undefined) fail('RedisStore client', 'is required: an ioredis Redis or Cluster instance')
  methods('RedisStore client', given.client, CLIENT_METHODS)
  const prefix = given.prefix ?? 'sess:'
  if (typeof prefix !== 'string') fail('RedisStore prefix', 'must be a string')
  const serializer = given.serializer === undefined ? JSON_SERIALIZER : methods('RedisStore serializer', given.serializer, ['stringify', 'parse'])
  return { client: options.client, prefix, serializer: serializer as unknown as RedisSerializer }
}

/**
 * Sessions in Redis: standalone, Sentinel or Cluster. Writes are compare-and-set
 * Lua scripts and expiries are absolute (PEXPIREAT). How long a request waits for Redis
 * is the plugin's `storeTimeout`.
 *
 * The per-user index (`<prefix>user:<user>`, a sorted set of keys scored by expiry) is
 * written in the same script as the record on a single server. A Cluster keeps the set and
 * the record in different slots, which no script can span: there every step that files a
 * record (a write, a touch) raises its entry before it touches the record, so a failure in
 * between leaves at worst an entry without a record, never a record without an entry. As
 * an entry without a record cannot be told from one whose write is still on its way, a
 * Cluster removes entries only when they expire, or when the store deleted their record
 * and nothing filed them again since.
 */
export class RedisStore implements SessionStore {
  #client: Commands
  #prefix: string
  #serializer: RedisSerializer
  #cluster: boolean
  // The prefix of the user sets, as the scripts get it: '' on a Cluster, where a script
  // may reach no key it was not given.
  #sets: string
  #corked = false

  constructor (options: RedisStoreOptions) {
    const valid = validate(options)
    this.#client = valid.client as unknown as Commands
    this.#prefix = valid.prefix
    this.#serializer = valid.serializer
    this.#cluster = (valid.client as { isCluster?: unknown }).isCluster === true
    this.#sets = this.#cluster ? '' : this.#setOf('')
  }

  async get (key: string): Promise<SessionRecord | undefined> {
    this.#batch()
    const row = await this.#client.hmget(this.#prefix + key, ...FIELDS)
    // Redis drops the key at its expiry, so a present record is a live one.
    return row[3] === null ? undefined : this.#record(row)
  }

  async set (key: string, record: SessionRecord, expectedVersion: number): Promise<boolean> {
    const { version, createdAt, user } = record
    const data = this.#serializer.stringify(record.data)
    const expiresAt = wholeMs(record.expiresAt)
    const args = [expectedVersion, version, createdAt, expiresAt, data, this.#sets, key]
    const keys = [this.#prefix + key]
    this.#batch()
    if (user !== undefined) {
      args.push(user, Date.now())
      if (this.#cluster) await this.#file(user, key, expiresAt)
      else keys.push(this.#setOf(user))
    }
    return await this.#run(COMPARE_AND_SET, keys, args) === 1
  }

  async destroy (key: string): Promise<void> {
    this.#batch()
    const left = await this.#run(DESTROY, [this.#prefix + key], [this.#sets, key])
    // Only a Cluster answers [user, expiresAt]: the entry is removed in a second step.
    if (Array.isArray(left)) await this.#run(UNFILE, [this.#setOf(left[0])], [key, left[1]])
  }

  async touch (key: string, expiresAt: number): Promise<boolean> {
    const at = wholeMs(expiresAt)
    this.#batch()
    // A Cluster answers the record's user instead of touching it until that user's entry
    // covers the new expiry. Another round happens only when a write moved the record to
    // yet another user in between, so the loop ends when such writes do.
    let filed = ''
    for (;;) {
      const answer = await this.#run(TOUCH, [this.#prefix + key], [at, this.#sets, key, Date.now(), filed])
      if (typeof answer !== 'string') return answer === 1
      await this.#file(answer, key, at)
      filed = answer
    }
  }

  async listUser (user: string): Promise<UserSession[]> {
    this.#batch()
    const set = this.#setOf(user)
    let rows: Array<[string, Row]>
    if (this.#cluster) {
      const keys = await this.#run(MEMBERS, [set], [Date.now()]) as string[]
      const read = await Promise.all(keys.map((key) => this.#client.hmget(this.#prefix + key, ...FIELDS)))
      rows = keys.map((key, i) => [key, read[i]])
    } else {
      const flat = await this.#run(LIST_USER, [set], [Date.now(), this.#prefix, user]) as Row
      rows = []
      for (let i = 0; i < flat.length; i += 6) rows.push([flat[i] as string, flat.slice(i + 1, i + 6)])
    }
    const listed: UserSession[] = []
    for (const [key, row] of rows) {
      if (row[3] === null || row[4] !== user) continue
      // One unreadable record does not hide the others: it is left out, and a load of it
      // finds it unusable and replaces it.
      try {
        listed.push({ key, record: this.#record(row) })
      } catch {}
    }
    return listed
  }

  async destroyUser (user: string): Promise<number> {
    this.#batch()
    const set = this.#setOf(user)
    if (!this.#cluster) return await this.#run(DESTROY_USER, [set], [Date.now(), this.#prefix, user]) as number
    // Every record filed before this started has its entry by now; each is deleted only
    // while it still belongs to the user, and only the entries of deleted records go.
    const keys = await this.#run(MEMBERS, [set], [Date.now()]) as string[]
    const ended = await Promise.all(keys.map((key) => this.#run(DESTROY_IF_USER, [this.#prefix + key], [user])))
    const gone = keys.flatMap((key, i) => typeof ended[i] === 'string' ? [key, ended[i] as string] : [])
    if (gone.length > 0) await this.#run(UNFILE, [set], gone)
    return gone.length / 2
  }

  /** Nothing to release: the client belongs to whoever built it. */
  async close (): Promise<void> {}

  #setOf (user: string): string {
    return `${this.#prefix}user:${user}`
  }

  // The Cluster's first step of filing a record: raise its entry to cover `expiresAt`.
  async #file (user: string, key: string, expiresAt: number): Promise<void> {
    await this.#run(FILE, [this.#setOf(user)], [expiresAt, key, Date.now()])
  }

  // A write to a socket is a system call, and on a busy server it was the largest single
  // cost of a session held in Redis (measured with --cpu-prof). Commands issued in one turn
  // of the event loop (by every request that turn handled) are held back and leave in one
  // write when the turn ends. A Cluster spreads commands over several sockets: sent as is.
  #batch (): void {
    if (this.#corked) return
    const stream = (this.#client as { stream?: Partial<Writable> }).stream
    if (typeof stream?.cork !== 'function' || typeof stream.uncork !== 'function') return
    stream.cork()
    this.#corked = true
    setImmediate(() => {
      this.#corked = false
      stream.uncork?.()
    })
  }

  // The script cache can be flushed (SCRIPT FLUSH, restart, failover to a fresh
  // replica); EVAL then runs the script and caches it again for the next EVALSHA.
  async #run (code: Script, keys: string[], args: Array<string | number>): Promise<unknown> {
    try {
      return await this.#client.evalsha(code.sha, keys.length, ...keys, ...args)
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err
      return await this.#client.eval(code.lua, keys.length, ...keys, ...args)
    }
  }

  #record ([version, createdAt, expiresAt, data, user]: Row): SessionRecord {
    const record: SessionRecord = { data: this.#parse(data as string), version: Number(version), createdAt: Number(createdAt), expiresAt: Number(expiresAt) }
    if (user !== null) record.user = user
    return record
  }

  // A value Redis holds but the serializer cannot read (truncated, written by something
  // else) is the record's fault, not the store's: the plugin replaces it.
  #parse (text: string): Record<string, unknown> {
    try {
      return this.#serializer.parse(text)
    } catch (err) {
      throw new UnusableRecordError(`the serializer cannot read it (${(err as Error).message})`)
    }
  }
}

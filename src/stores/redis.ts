import { createHash } from 'node:crypto'
import type { Writable } from 'node:stream'
import type { Cluster, Redis } from 'ioredis'
import { parseJson } from '../json'
import { UnusableRecordError } from '../errors'
import type { SessionRecord, SessionStore } from '../store'
import { fail, knownKeys, methods, plainObject } from '../validate'

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
  del (key: string): Promise<number>
}

interface Script {
  lua: string
  sha: string
}

function script (lua: string): Script {
  return { lua, sha: createHash('sha1').update(lua).digest('hex') }
}

// Scripts are not rolled back on error, so the expiry is checked before anything is
// written: a failing PEXPIREAT after the HSET would leave a record that never expires.
function checkExpiry (arg: number): string {
  return `if not string.match(ARGV[${arg}], '^%d+$') then
  return redis.error_reply('ERR expiresAt must be whole epoch milliseconds')
end
`
}

// A record is one hash (v: version, c: createdAt, e: expiresAt, d: data), so every
// operation touches one key and runs unchanged on Cluster. A hash rather than one JSON
// string lets the scripts read the version and move the expiry without decoding or
// rewriting the data, however large it is.
//
// HGET answers false for a missing key, which reads as version 0.
const COMPARE_AND_SET = script(checkExpiry(4) + `
if (redis.call('HGET', KEYS[1], 'v') or '0') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'c', ARGV[3], 'e', ARGV[4], 'd', ARGV[5])
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
return 1`)

// EXISTS comes first: a PEXPIREAT in the past deletes the key, and a HSET after it
// would bring back a record without data.
const TOUCH = script(checkExpiry(1) + `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'e', ARGV[1])
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
return 1`)

const JSON_SERIALIZER: RedisSerializer = { stringify: JSON.stringify, parse: (text) => parseJson(text) as Record<string, unknown> }

// PEXPIREAT takes whole milliseconds; rounding up never ends a record early.
function wholeMs (time: number): number {
  return Math.ceil(time)
}

// The commands a client must offer: ioredis' Redis and Cluster both do.
const CLIENT_METHODS = ['evalsha', 'eval', 'hmget', 'del']

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
 */
export class RedisStore implements SessionStore {
  #client: Commands
  #prefix: string
  #serializer: RedisSerializer
  #corked = false

  constructor (options: RedisStoreOptions) {
    const valid = validate(options)
    this.#client = valid.client as unknown as Commands
    this.#prefix = valid.prefix
    this.#serializer = valid.serializer
  }

  async get (key: string): Promise<SessionRecord | undefined> {
    this.#batch()
    const [version, createdAt, expiresAt, data] = await this.#client.hmget(this.#prefix + key, 'v', 'c', 'e', 'd')
    // Redis drops the key at its expiry, so a present record is a live one.
    if (data === null) return undefined
    return { data: this.#parse(data), version: Number(version), createdAt: Number(createdAt), expiresAt: Number(expiresAt) }
  }

  async set (key: string, record: SessionRecord, expectedVersion: number): Promise<boolean> {
    const { version, createdAt } = record
    const data = this.#serializer.stringify(record.data)
    const args = [expectedVersion, version, createdAt, wholeMs(record.expiresAt), data]
    this.#batch()
    return await this.#run(COMPARE_AND_SET, key, args) === 1
  }

  async destroy (key: string): Promise<void> {
    this.#batch()
    await this.#client.del(this.#prefix + key)
  }

  async touch (key: string, expiresAt: number): Promise<boolean> {
    this.#batch()
    return await this.#run(TOUCH, key, [wholeMs(expiresAt)]) === 1
  }

  /** Nothing to release: the client belongs to whoever built it. */
  async close (): Promise<void> {}

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
  async #run (code: Script, key: string, args: Array<string | number>): Promise<unknown> {
    const fullKey = this.#prefix + key
    try {
      return await this.#client.evalsha(code.sha, 1, fullKey, ...args)
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err
      return await this.#client.eval(code.lua, 1, fullKey, ...args)
    }
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

import { parseJson } from '../json'
import { UnusableRecordError } from '../errors'
import type { SessionRecord, SessionStore } from '../store'
import { fail, knownKeys, methods, plainObject } from '../validate'
import { memjsCasClient, type CasClient, type Item, type MemjsClient } from './memcached-protocol'

export type { MemcachedResponse, MemjsClient } from './memcached-protocol'

export interface MemcachedStoreOptions {
  /** A memjs client (`memjs.Client.create(servers, options)`) that you built and that you close. */
  client: MemjsClient
  /** Put before every key. Default `'sess:'`. */
  prefix?: string
}

// memcached reads an expiration above 30 days as an absolute Unix time, and 0 as never.
const RELATIVE_LIMIT_S = 30 * 86_400
// memcached keys are at most 250 bytes; the plugin's keys are 43 characters.
const MAX_PREFIX_BYTES = 250 - 43
// Rounds of read and compare-and-set a write makes before it reports a conflict. A round is
// lost only to another write or touch of the same key landing between its read and its write.
const WRITE_ROUNDS = 10
// CAS tokens kept from reads and writes, so that a write after a read needs no second read.
const REMEMBERED = 10_000

// The stored value: the record's fields under short names, the data last.
interface Stored {
  v: number
  c: number
  e: number
  u?: string
  d: Record<string, unknown>
}

/** How a write proceeds: create, compare-and-set on a token, or refuse (a conflict). */
type Plan = 'add' | Buffer | 'refuse'

/** memcached's expiration for `expiresAt`: seconds from now up to 30 days, a Unix time beyond. */
function exptimeOf (expiresAt: number, now: number): number {
  const seconds = Math.ceil((expiresAt - now) / 1000)
  // Already expired, or not a time: gone within a second, and missing for the store at once.
  // Never 0, which would keep it for ever.
  if (!(seconds > 0)) return 1
  return seconds <= RELATIVE_LIMIT_S ? seconds : Math.ceil(expiresAt / 1000)
}

// memcached drops an item within a second of its (whole-second) expiration; the application's
// clock decides before that.
function expired (record: SessionRecord): boolean {
  return record.expiresAt <= Date.now()
}

function encode ({ data, version, createdAt, expiresAt, user }: SessionRecord): Buffer {
  const stored: Stored = { v: version, c: createdAt, e: expiresAt, u: user, d: data }
  return Buffer.from(JSON.stringify(stored))
}

// A value this store did not write (another program's, truncated) is the record's fault, not
// the server's: the plugin replaces it. The plugin checks the fields' types.
function decode (value: Buffer): SessionRecord {
  let parsed: unknown
  try {
    parsed = parseJson(value.toString('utf8'))
  } catch (err) {
    throw new UnusableRecordError(`it is not JSON (${(err as Error).message})`)
  }
  if (parsed === null || typeof parsed !== 'object') throw new UnusableRecordError('it is not a record this store wrote')
  const { v, c, e, u, d } = parsed as Stored
  const record: SessionRecord = { data: d, version: v, createdAt: c, expiresAt: e }
  if (u !== undefined) record.user = u
  return record
}

function validate (options: MemcachedStoreOptions): Required<MemcachedStoreOptions> {
  const given = plainObject('MemcachedStore options', options)
  knownKeys('MemcachedStore ', given, ['client', 'prefix'], {
    servers: "pass a memjs client: memjs.Client.create('host1:11211,host2:11211')",
    ttl: "a session's lifetime is the plugin's idleTimeout and absoluteTimeout options (seconds)",
    expires: "a session's lifetime is the plugin's idleTimeout and absoluteTimeout options (seconds)",
    timeout: "how long a request waits for memcached is the plugin's storeTimeout option (seconds)"
  })
  if (given.client === undefined) fail('MemcachedStore client', "is required: a memjs Client, memjs.Client.create('host:11211')")
  methods('MemcachedStore client', given.client, ['perform', 'incrSeq'])
  // With failover, memjs sends a key to the next server while its own is down, and back when
  // it returns: a session would then be read from one server and written to another.
  if ((given.client as { options?: { failover?: unknown } }).options?.failover === true) {
    fail('MemcachedStore client', 'has failover on: a session must always reach the server that holds it; create the client without failover')
  }
  const prefix = given.prefix ?? 'sess:'
  if (typeof prefix !== 'string' || Buffer.byteLength(prefix) > MAX_PREFIX_BYTES || /[\s\x00-\x1f\x7f]/.test(prefix)) {
    fail('MemcachedStore prefix', `must be a string of at most ${MAX_PREFIX_BYTES} bytes without spaces or control characters (memcached keys are at most 250 bytes)`)
  }
  return { client: given.client as MemjsClient, prefix }
}

/**
 * Sessions in memcached, through a memjs client, one item per session. Every write is a
 * compare-and-set on the item's CAS token (a create is an ADD); the record's version lives in
 * the value. memjs hashes each key to one server, so a read and the write after it meet on the
 * same server. memcached cannot list keys: there is no per-user index, and revocation works
 * through the plugin's per-user stamps, kept here as ordinary records.
 */
export class MemcachedStore implements SessionStore {
  #client: CasClient
  #prefix: string
  // key → the record's version and expiry, and its CAS token, as this store last read or wrote
  // it. Whatever changed the item since then also changed its token.
  #tokens = new Map<string, { version: number, expiresAt: number, cas: Buffer }>()

  constructor (options: MemcachedStoreOptions) {
    const valid = validate(options)
    this.#client = memjsCasClient(valid.client)
    this.#prefix = valid.prefix
  }

  async get (key: string): Promise<SessionRecord | undefined> {
    const item = await this.#read(key)
    if (item === undefined || expired(item.record)) return undefined
    this.#remember(key, item.record, item.cas)
    return item.record
  }

  async set (key: string, record: SessionRecord, expectedVersion: number): Promise<boolean> {
    const value = encode(record)
    const exptime = exptimeOf(record.expiresAt, Date.now())
    let plan: Plan | undefined = expectedVersion === 0 ? 'add' : this.#remembered(key, expectedVersion)
    for (let round = 0; round < WRITE_ROUNDS; round++) {
      plan ??= await this.#plan(key, expectedVersion)
      if (plan === 'refuse') return false
      const written = plan === 'add'
        ? await this.#client.add(this.#prefix + key, value, exptime)
        : await this.#client.cas(this.#prefix + key, value, exptime, plan)
      if (written.ok) {
        this.#remember(key, record, written.cas)
        return true
      }
      // A stale token, a lost create, or the item gone: decide again on what is stored now.
      plan = undefined
    }
    return false
  }

  async destroy (key: string): Promise<void> {
    this.#tokens.delete(key)
    await this.#client.delete(this.#prefix + key)
  }

  // The expiry lives in the value too (the binary protocol's GET does not tell an item's
  // expiration), so a touch rewrites the value with its data and version unchanged.
  async touch (key: string, expiresAt: number): Promise<boolean> {
    for (let round = 0; round < WRITE_ROUNDS; round++) {
      const item = await this.#read(key)
      if (item === undefined || expired(item.record)) return false
      const touched = { ...item.record, expiresAt }
      const written = await this.#client.cas(this.#prefix + key, encode(touched), exptimeOf(expiresAt, Date.now()), item.cas)
      if (written.ok) {
        this.#remember(key, touched, written.cas)
        return true
      }
    }
    // Every round lost to a write or touch of this live record, each moving its expiry.
    return true
  }

  /** Nothing to release: the client belongs to whoever built it. */
  async close (): Promise<void> {}

  async #read (key: string): Promise<{ record: SessionRecord, cas: Buffer } | undefined> {
    const item: Item | undefined = await this.#client.gets(this.#prefix + key)
    return item === undefined ? undefined : { record: decode(item.value), cas: item.cas }
  }

  // An expired record counts as missing (version 0): only a create may replace it.
  async #plan (key: string, expectedVersion: number): Promise<Plan> {
    const item = await this.#read(key)
    if (item === undefined) return expectedVersion === 0 ? 'add' : 'refuse'
    const version = expired(item.record) ? 0 : item.record.version
    return version === expectedVersion ? item.cas : 'refuse'
  }

  // The token, when it is of that version and the record was live: an expired record counts
  // as missing, so only a read can tell what a write may do.
  #remembered (key: string, version: number): Buffer | undefined {
    const token = this.#tokens.get(key)
    return token?.version === version && token.expiresAt > Date.now() ? token.cas : undefined
  }

  #remember (key: string, { version, expiresAt }: SessionRecord, cas: Buffer): void {
    if (this.#tokens.size >= REMEMBERED) this.#tokens.clear()
    this.#tokens.set(key, { version, expiresAt, cas })
  }
}

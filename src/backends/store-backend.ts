import { storeKey } from '../crypto/ids'
import type { Sealer } from '../crypto/sealer'
import type { CookieSigner } from '../crypto/signer'
import { UnusableRecordError } from '../errors'
import { expiredReason } from '../expiry'
import type { GuardedStore } from '../guarded-store'
import { parseJson } from '../json'
import type { MaybePromise } from '../maybe-promise'
import { NewestVersions } from '../newest-versions'
import type { ResolvedOptions } from '../options'
import { RECENT_COOKIE_CHARS, RecentCookies } from '../recent-cookies'
import type { SessionRecord, UserSession } from '../store'
import { loadedState, type Backend, type Loaded, type SessionState } from './backend'

/** A record this process just wrote, for the commit queued behind it: its data as JSON. */
interface HandedRecord {
  version: number
  createdAt: number
  expiresAt: number
  user: string | undefined
  json: string
}

// Records handed to queued commits, kept at most, and characters of their JSON (the oldest
// not taken goes first): nearly every one is taken at once, by the commit waiting for it.
const HANDED_KEYS = 64
const HANDED_CHARS = 4 * 1024 * 1024

/** A signed cookie known to be authentic: its id and store key. */
interface SignedCookie {
  id: string
  key: string
  /** Signed with the current secret; otherwise it is re-issued. */
  current: boolean
  /** Set once its record was found missing or expired (epoch ms). */
  deadSince?: number
}

// What an entry holds besides the cookie: id, key and bookkeeping.
const SIGNED_ENTRY_CHARS = 150
// A cookie whose record is gone is answered from memory for this long: a browser keeps
// sending it until it closes, and each of those requests would otherwise cost a store read.
// Ids are never reused, so the only risk is a store whose reads lag its writes; a minute
// is far longer than any replication lag and short enough to bound that.
export const DEAD_COOKIE_MS = 60_000
// Where sealed record data sits in `SessionRecord.data` under `encryptAtRest`.
export const SEALED_FIELD = 'sealed'

const keyOf = (state: Pick<SessionState, 'id' | 'key'>): string => (state.key ??= storeKey(state.id))

/**
 * Sessions kept in a server-side store: the cookie is the id plus an HMAC signature,
 * verified before any store lookup; the store sees only a digest of the id.
 */
export class StoreBackend implements Backend {
  // A signed id is always short.
  readonly maxCookieBytes = Infinity
  #store: GuardedStore
  #signer: CookieSigner
  #options: ResolvedOptions
  #records: RecordSealer | undefined
  #signed = new RecentCookies<SignedCookie>(RECENT_COOKIE_CHARS, () => SIGNED_ENTRY_CHARS)
  // Two requests of one session in this process both load version n; the second one's
  // commit waits for the first (exclusive()), which stores n + 1. Its compare-and-set is then
  // bound to fail: answered here, it costs the store nothing.
  #newest = new NewestVersions()
  // ...and when that second commit was already waiting while the first was written, the
  // first hands it the record it wrote, so it needs no read either (see compareAndSet()).
  #handed = new Map<string, HandedRecord>()
  #handedChars = 0

  constructor (options: ResolvedOptions, store: GuardedStore, signer: CookieSigner, sealer: Sealer | undefined) {
    this.#options = options
    this.#store = store
    this.#signer = signer
    this.#records = sealer === undefined ? undefined : new RecordSealer(sealer)
  }

  load (cookie: string): MaybePromise<Loaded> {
    const signed = this.#signed.get(cookie) ?? this.#verify(cookie)
    if (typeof signed === 'string') return { ok: false, reason: signed, level: 'debug' }
    if (signed.deadSince !== undefined && Date.now() - signed.deadSince < DEAD_COOKIE_MS) {
      return { ok: false, reason: 'session gone (remembered)', level: 'debug' }
    }
    return this.#get(signed.key).then(
      (record) => this.#loaded(signed, cookie, record),
      (err: unknown) => this.#unusable(signed, err)
    )
  }

  read (state: Pick<SessionState, 'id' | 'key' | 'version'>, afterConflict = false): Promise<SessionRecord | undefined> {
    const key = keyOf(state)
    const handed = afterConflict ? this.#takeHanded(key, state.version) : undefined
    return handed === undefined ? this.#stored(key) : Promise.resolve(handed)
  }

  alive (state: Pick<SessionState, 'id' | 'key'>): Promise<boolean> {
    return this.#stored(keyOf(state)).then((record) => record !== undefined)
  }

  /** The per-user index, records opened; one that does not open is left out. */
  async listUser (user: string): Promise<UserSession[]> {
    const entries = await this.#store.listUser(user)
    const records = this.#records
    if (records === undefined) return entries
    const opened = await Promise.all(entries.map(({ key, record }) => records.open(key, record).then((open) => ({ key, record: open }), () => undefined)))
    return opened.filter((entry) => entry !== undefined)
  }

  destroyUser (user: string): Promise<number> {
    return this.#store.destroyUser(user)
  }

  compareAndSet (state: SessionState, record: SessionRecord, expected: number): Promise<boolean> {
    const key = keyOf(state)
    if (expected > 0 && this.#newest.outdated(key, expected)) return Promise.resolve(false)
    const written = (done: boolean): boolean => {
      if (done) this.#written(key, record)
      return done
    }
    const records = this.#records
    if (records === undefined) return this.#store.set(key, record, expected, written)
    return records.seal(key, record).then((sealed) => this.#store.set(key, sealed, expected, written))
  }

  touch (state: SessionState, expiresAt: number): Promise<boolean> {
    return this.#store.touch(keyOf(state), expiresAt)
  }

  destroy (state: Pick<SessionState, 'id' | 'key'>): Promise<void> {
    const key = keyOf(state)
    this.#newest.forget(key)
    this.#dropHanded(key)
    return this.#store.destroy(key)
  }

  exclusive<T> (state: Pick<SessionState, 'id' | 'key'>, operation: string, task: () => MaybePromise<T>): Promise<T> {
    return this.#store.exclusive(keyOf(state), operation, task)
  }

  // An issued cookie is known to be authentic: its next request skips the HMAC check.
  issue (state: SessionState): string {
    if (state.cookie !== undefined) return state.cookie
    const cookie = this.#signer.sign(state.id)
    this.#signed.add(cookie, { id: state.id, key: keyOf(state), current: true })
    state.cookie = cookie
    return cookie
  }

  #verify (cookie: string): SignedCookie | string {
    const verified = this.#signer.verify(cookie)
    if (!verified.ok) return verified.reason
    const signed = { id: verified.id, key: storeKey(verified.id), current: verified.current }
    this.#signed.add(cookie, signed)
    return signed
  }

  #get (key: string): Promise<SessionRecord | undefined> {
    const records = this.#records
    const found = this.#store.get(key)
    return records === undefined ? found : found.then((record) => record && records.open(key, record))
  }

  #loaded (signed: SignedCookie, cookie: string, record: SessionRecord | undefined): Loaded {
    const reason = record === undefined ? 'unknown or expired session' : expiredReason(this.#options, record)
    if (reason !== undefined) return this.#dead(signed, reason)
    this.#saw(signed.key, record)
    return { ok: true, state: loadedState(signed.id, signed.key, record as SessionRecord, signed.current ? cookie : undefined, undefined) }
  }

  #stored (key: string): Promise<SessionRecord | undefined> {
    return this.#get(key).then((record) => this.#saw(key, record), (err: unknown) => {
      if (err instanceof UnusableRecordError) return undefined
      throw err
    })
  }

  // A commit of this session that came while this one was written waits behind it with an
  // older copy: it will lose its compare-and-set and go on from this record. Taken as JSON
  // now, while it is still what the store was given: once this commit returns, the data is
  // its request's to change again.
  #written (key: string, record: SessionRecord): void {
    this.#saw(key, record)
    if (!this.#store.waiting(key)) return
    const json = JSON.stringify(record.data)
    this.#dropHanded(key)
    this.#handed.set(key, { version: record.version, createdAt: record.createdAt, expiresAt: record.expiresAt, user: record.user, json })
    this.#handedChars += json.length
    while (this.#handed.size > HANDED_KEYS || this.#handedChars > HANDED_CHARS) this.#dropHanded(this.#handed.keys().next().value as string)
  }

  #dropHanded (key: string): void {
    const handed = this.#handed.get(key)
    if (handed === undefined) return
    this.#handed.delete(key)
    this.#handedChars -= handed.json.length
  }

  // Once only: a commit that loses again after it reads the store.
  #takeHanded (key: string, version: number): SessionRecord | undefined {
    const handed = this.#handed.get(key)
    if (handed === undefined || handed.version <= version) return undefined
    this.#dropHanded(key)
    const { json, user, ...times } = handed
    const record: SessionRecord = { data: parseJson(json) as Record<string, unknown>, ...times }
    if (user !== undefined) record.user = user
    return record
  }

  #saw (key: string, record: SessionRecord | undefined): SessionRecord | undefined {
    if (record !== undefined) this.#newest.saw(key, record.version)
    return record
  }

  #dead (signed: SignedCookie, reason: string): Loaded {
    signed.deadSince = Date.now()
    return { ok: false, reason, level: 'debug' }
  }

  // Whatever the record holds, the user gets a fresh session rather than an error until it
  // expires; the record goes, so nothing reads it again.
  async #unusable (signed: SignedCookie, err: unknown): Promise<Loaded> {
    if (!(err instanceof UnusableRecordError)) throw err
    await this.#store.destroy(signed.key).catch(() => {})
    this.#dead(signed, err.message)
    return { ok: false, reason: err.message, level: 'warn' }
  }
}

// The record's key is the authenticated context, so sealed data moved to another key (by
// anyone who can write to the store) no longer opens.
function recordContext (key: string): string {
  return 'record:' + key
}

/** `encryptAtRest`: seals each record's data before the store sees it; version and times stay readable. */
class RecordSealer {
  #sealer: Sealer

  constructor (sealer: Sealer) {
    this.#sealer = sealer
  }

  async seal (key: string, record: SessionRecord): Promise<SessionRecord> {
    const sealed = await this.#sealer.seal(recordContext(key), JSON.stringify(record.data))
    return { ...record, data: { [SEALED_FIELD]: sealed } }
  }

  async open (key: string, record: SessionRecord): Promise<SessionRecord> {
    const sealed = record.data[SEALED_FIELD]
    // A plaintext record is refused: accepting one would let a store writer forge data.
    if (typeof sealed !== 'string') throw new UnusableRecordError('not sealed (encryptAtRest)')
    const opened = await this.#sealer.unseal(recordContext(key), sealed)
    if (!opened.ok) throw new UnusableRecordError(`does not open: ${opened.reason}`)
    const data = parseJson(opened.plaintext.toString('utf8'))
    if (data === null || typeof data !== 'object' || Array.isArray(data)) throw new UnusableRecordError('sealed data is not an object')
    return { ...record, data: data as Record<string, unknown> }
  }
}

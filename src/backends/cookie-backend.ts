import type { Unsealed } from '../crypto/seal'
import type { Sealer } from '../crypto/sealer'
import { expiredReason, expiryFor } from '../expiry'
import { IssuedCookies } from '../issued-cookies'
import { isFlatJson } from '../json'
import { then, type MaybePromise } from '../maybe-promise'
import type { ResolvedOptions } from '../options'
import { RECENT_COOKIE_CHARS, RecentCookies } from '../recent-cookies'
import type { SealedSession, SessionRecord, StatelessStore } from '../store'
import { loadedState, type Backend, type Loaded, type SessionState } from './backend'

/** A sealed cookie known to be authentic: its plaintext payload. */
interface OpenedCookie {
  payload: Buffer
  current: boolean
  // Whether the recent cookies keep this entry: only then is its decoded session worth keeping.
  kept: boolean
  // Its session once decoded, kept when the data holds primitives only (a user id, a
  // counter): a shallow copy then gives each request data of its own without decoding.
  flat: SealedSession | undefined
}

function copyOf (session: SealedSession): SealedSession {
  return { id: session.id, data: { ...session.data }, createdAt: session.createdAt, lastActive: session.lastActive }
}

// Returns of an issued cookie after which it is kept with its decoded session.
const KEEP_AFTER_RETURNS = 3

// A stateless session has no stored versions: every commit simply succeeds.
const SEALED_VERSION = 1

function asBuffer (bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

/**
 * Sessions sealed whole in the cookie (a stateless store such as CookieStore): the store
 * turns a session into plaintext and back, this backend seals and opens it (AES-256-GCM,
 * the cookie name as authenticated context). Nothing to read, lock or delete server-side.
 */
export class CookieBackend implements Backend {
  readonly maxCookieBytes: number
  #codec: StatelessStore
  #sealer: Sealer
  #options: ResolvedOptions
  #opened = new RecentCookies<OpenedCookie>(RECENT_COOKIE_CHARS, (entry) => entry.payload.length)
  #issued = new IssuedCookies()

  constructor (options: ResolvedOptions, codec: StatelessStore, sealer: Sealer) {
    this.#options = options
    this.#codec = codec
    this.#sealer = sealer
    this.maxCookieBytes = codec.maxCookieBytes
  }

  load (cookie: string): MaybePromise<Loaded> {
    // Issued here first: the usual case, and the one that needs no hash of the cookie string.
    const entry = this.#reissued(cookie) ?? this.#opened.get(cookie) ?? this.#open(cookie)
    return then(entry, (found) => this.#loaded(cookie, found))
  }

  // What reload() means without a store: back to the data of the last cookie read or sent.
  async read (state: SessionState): Promise<SessionRecord | undefined> {
    const session = state.payload === undefined ? undefined : this.#decode(state.payload)
    return session && this.#record(session)
  }

  // No stored versions to compare: a write always succeeds, and it is sealed into a new cookie.
  compareAndSet (state: SessionState): boolean {
    state.cookie = undefined
    return true
  }

  // The last-active time is in the cookie: moving the deadline means sealing a new one.
  touch (state: SessionState, expiresAt: number): boolean {
    if (expiresAt !== state.expiresAt) state.cookie = undefined
    return true
  }

  async destroy (): Promise<void> {}

  // A sealed cookie cannot be taken back: only a revocation (checked by the plugin) ends it.
  alive (): boolean {
    return true
  }

  exclusive<T> (_state: unknown, _operation: string, task: () => MaybePromise<T>): MaybePromise<T> {
    return task()
  }

  // Issued cookies go to a ring of their own, not to the recent cookies: many never come
  // back (the next write replaces them), and an entry of the recent cookies, an object and
  // a buffer of its own, costs more in garbage collection than it saves (measured).
  issue (state: SessionState): MaybePromise<string> {
    if (state.cookie !== undefined) return state.cookie
    const lastActive = Date.now()
    const payload = asBuffer(this.#codec.encode({ id: state.id, data: state.data, createdAt: state.createdAt, lastActive }))
    const name = this.#options.cookieName
    const inline = this.#sealer.sealInline(name, payload)
    const sealed = inline ?? this.#sealer.seal(name, payload)
    return then(sealed, (cookie) => {
      this.#issued.add(cookie, payload)
      state.cookie = cookie
      state.payload = payload
      state.expiresAt = expiryFor(this.#options, lastActive, state.createdAt)
      return cookie
    })
  }

  // Issued under the current key by this registration: no need to open it. A cookie that
  // keeps coming back (reads between writes) moves to the recent cookies, which keep its
  // decoded session; one that comes back once or twice before the next write replaces it (a
  // browser's page after a write) is decoded each time (keeping those cost more than it saved).
  #reissued (cookie: string): OpenedCookie | undefined {
    const found = this.#issued.get(cookie)
    if (found === undefined) return undefined
    const kept = found.returns >= KEEP_AFTER_RETURNS
    const entry = { payload: found.payload, current: true, kept, flat: undefined }
    if (kept) {
      this.#opened.add(cookie, entry)
      this.#issued.forget(cookie)
    }
    return entry
  }

  #open (cookie: string): MaybePromise<OpenedCookie | string> {
    const name = this.#options.cookieName
    const inline = this.#sealer.unsealInline(name, cookie)
    return then(inline ?? this.#sealer.unseal(name, cookie), (result) => this.#remember(cookie, result))
  }

  #remember (cookie: string, result: Unsealed): OpenedCookie | string {
    if (!result.ok) return result.reason
    const entry = { payload: result.plaintext, current: result.current, kept: true, flat: undefined }
    this.#opened.add(cookie, entry)
    return entry
  }

  // Timeouts come from the sealed timestamps: the cookie's own expiry is the browser's business.
  #loaded (cookie: string, entry: OpenedCookie | string): Loaded {
    if (typeof entry === 'string') return { ok: false, reason: entry, level: 'debug' }
    const session = entry.flat === undefined ? this.#decodeOnce(entry) : copyOf(entry.flat)
    if (session === undefined) return { ok: false, reason: 'unreadable payload', level: 'debug' }
    const record = this.#record(session)
    const reason = expiredReason(this.#options, record)
    if (reason !== undefined) return { ok: false, reason, level: 'debug' }
    return { ok: true, state: loadedState(session.id, undefined, record, entry.current ? cookie : undefined, entry.payload) }
  }

  #decodeOnce (entry: OpenedCookie): SealedSession | undefined {
    const session = this.#decode(entry.payload)
    if (entry.kept && session !== undefined && isFlatJson(session.data)) entry.flat = copyOf(session)
    return session
  }

  // The user is worked out from the data: the cookie has no room to spare for a digest.
  #record ({ data, createdAt, lastActive }: SealedSession): SessionRecord {
    const record: SessionRecord = { data, version: SEALED_VERSION, createdAt, expiresAt: expiryFor(this.#options, lastActive, createdAt) }
    const user = this.#options.users?.of(data)
    if (user !== undefined) record.user = user
    return record
  }

  // Authentic but unreadable, e.g. written before a custom store changed its format: like
  // any other cookie the plugin cannot use, it gives a fresh session, not a 500.
  #decode (payload: Buffer): SealedSession | undefined {
    try {
      return this.#codec.decode(payload)
    } catch {
      return undefined
    }
  }
}

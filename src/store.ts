// The contract every server-side store implements. Times are epoch milliseconds.

/** One stored session. `version` starts at 1 and grows by one on every write. */
export interface SessionRecord {
  data: Record<string, unknown>
  version: number
  createdAt: number
  expiresAt: number
}

/**
 * A session backend. Keys are digests of session ids, never the ids themselves.
 *
 * - `get` resolves undefined for a missing or expired record. A record it holds but cannot
 *   decode (truncated, foreign) is not a failure of the store: it rejects with
 *   `UnusableRecordError`, and the plugin starts a fresh session and destroys the record.
 * - `set` is a compare-and-set: it writes only when the stored version equals
 *   `expectedVersion` (0 means the key must not exist, or exists but has expired) and
 *   resolves false on a conflict.
 * - Promises reject only on real failures (network, disk, server). The plugin bounds every
 *   call by its `storeTimeout` and queues the calls of one session: a store needs no timer
 *   and no lock of its own.
 */
export interface SessionStore {
  get(key: string): Promise<SessionRecord | undefined>
  set(key: string, record: SessionRecord, expectedVersion: number): Promise<boolean>
  destroy(key: string): Promise<void>
  /**
   * Moves the expiry of an existing, unexpired record without rewriting its data. Resolves
   * whether the record existed: a touch never creates or brings back a record.
   */
  touch?(key: string, expiresAt: number): Promise<boolean>
  /** Releases what the store itself opened (timers, files); never a client it was given. */
  close?(): Promise<void>
}

/** What a stateless store keeps in the cookie, sealed. Times are epoch milliseconds. */
export interface SealedSession {
  id: string
  data: Record<string, unknown>
  createdAt: number
  /** When the cookie was last sealed: the idle timeout counts from here. */
  lastActive: number
}

/**
 * A store that keeps no server-side state: the whole session travels sealed in
 * the cookie. The plugin recognises it by `stateless: true` and does the sealing
 * itself (AES-256-GCM, the cookie name as authenticated context); the store only
 * turns a session into the plaintext payload and back.
 */
export interface StatelessStore {
  readonly stateless: true
  /** Longest `Set-Cookie` header value allowed, in bytes. */
  readonly maxCookieBytes: number
  /** The plaintext the plugin seals into the cookie. */
  encode(session: SealedSession): Uint8Array
  /** The payload's session, or undefined when it is not one this store wrote. */
  decode(payload: Buffer): SealedSession | undefined
  close?(): Promise<void>
}

/**
 * Data kept in a session. Augment it to type `get` and `set`:
 * `declare module 'fastify-sessions' { interface SessionData { userId: string } }`
 */
export interface SessionData {
  [key: string]: unknown
}

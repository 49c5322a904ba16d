// The contract every server-side store implements, and what each method means. The
// conformance suite (`fastify-sessions/testing`) checks every rule written here.
//
// - Keys are SHA-256 digests of session ids (43 base64url characters), never the ids.
// - Times are absolute epoch milliseconds from the application's clock (`Date.now()` where
//   the plugin runs). A store maps them to its backend's expiry however it likes, but the
//   application's clock decides: a record whose `expiresAt` is not after `Date.now()` is
//   missing for every method, whether or not the backend has removed it yet.
// - Every `get` and `listUser` returns objects the caller owns and may mutate; changing
//   them changes nothing stored.
// - Promises reject only on real failures (network, disk, server). A conflict is not a
//   failure: `set` resolves false. The plugin bounds every call by its `storeTimeout`,
//   classifies failures and queues the calls of one session from one process, so a store
//   needs no timer, no retry and no lock of its own across one process.

/** One stored session. `version` starts at 1 and grows by one on every write. */
export interface SessionRecord {
  data: Record<string, unknown>
  version: number
  createdAt: number
  expiresAt: number
  /**
   * A digest of the user id when the plugin's `userKey` names a user; absent otherwise.
   * Every store keeps it and returns it with the record (revocation stamps are checked
   * against it); a store with a per-user index also files the record under it.
   */
  user?: string
}

/** One entry of a per-user index: the record's key and the record. */
export interface UserSession {
  key: string
  record: SessionRecord
}

/**
 * A session backend.
 *
 * - `get` resolves undefined for a missing or expired record. A record it holds but cannot
 *   decode (truncated, foreign) is not a failure of the store: it rejects with
 *   `UnusableRecordError`, and the plugin starts a fresh session and destroys the record.
 * - `set` is a compare-and-set: it writes only when the stored version equals
 *   `expectedVersion`, and resolves false (changing nothing) otherwise. 0 means the key must
 *   be missing, and an expired record counts as missing, so a create over it succeeds.
 *   Of several concurrent creates of one key exactly one succeeds.
 * - `destroy` removes the record (and its index entry); a missing key is no error.
 * - `touch` moves the expiry of a live record without rewriting its data or its version, and
 *   resolves whether the record was live: it never creates a record and never brings back an
 *   expired one.
 * - The per-user index is optional, both methods or neither: a store that has it files
 *   every record with a `user` under that user, atomically with the write (a record is
 *   never stored without its entry, so it cannot escape a `destroyUser`), and moves the
 *   entry when the record's user changes. `listUser` lists the live records of a user;
 *   `destroyUser` removes every record filed under the user at the moment it runs and
 *   resolves how many live ones it removed. A record written after it started may survive:
 *   that is a session created after the revocation. Without the index, the plugin revokes a
 *   user's sessions through a "not before" stamp kept in the store as an ordinary record.
 */
export interface SessionStore {
  get(key: string): Promise<SessionRecord | undefined>
  set(key: string, record: SessionRecord, expectedVersion: number): Promise<boolean>
  destroy(key: string): Promise<void>
  touch?(key: string, expiresAt: number): Promise<boolean>
  /** Releases what the store itself opened (timers, files); never a client it was given. */
  close?(): Promise<void>
  listUser?(user: string): Promise<UserSession[]>
  destroyUser?(user: string): Promise<number>
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
  /**
   * A server-side store that keeps per-user "not before" stamps, so that the sessions of a
   * user can be ended (`revokeUser`) although their cookies cannot be taken back.
   */
  readonly revocations?: SessionStore
  /** Seconds a stamp read from `revocations` answers later lookups too; 0 (default) reads on every load. */
  readonly revocationCache?: number
  close?(): Promise<void>
}

/**
 * Data kept in a session. Augment it to type `get` and `set`:
 * `declare module 'fastify-sessions' { interface SessionData { userId: string } }`
 */
export interface SessionData {
  [key: string]: unknown
}

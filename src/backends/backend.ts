import type { MaybePromise } from '../maybe-promise'
import type { SessionRecord } from '../store'

/** What a backend knows of one session: its identity, its record and its cookie. */
export interface SessionState extends SessionRecord {
  id: string
  /** The store key (a digest of the id), computed when first needed. */
  key: string | undefined
  /** The cookie value that stands for this state; undefined when a new one must be issued. */
  cookie: string | undefined
  /** Sealed-cookie backend: the plaintext of `cookie`, which reload() goes back to. */
  payload: Buffer | undefined
}

/** A cookie turned into a session, or the reason it was not (logged at `level`). */
export type Loaded =
  | { ok: true, state: SessionState }
  | { ok: false, reason: string, level: 'debug' | 'warn' }

/**
 * How sessions are loaded and kept: in a server-side store, or sealed in the cookie itself.
 * Chosen once per registration; the session never asks which one it has. Methods that
 * usually finish without waiting return a value or a promise (see maybe-promise.ts).
 */
export interface Backend {
  /** Longest session `Set-Cookie` line allowed, in bytes. */
  readonly maxCookieBytes: number
  load (cookie: string): MaybePromise<Loaded>
  /**
   * The stored copy now; undefined when it is gone or unusable. `afterConflict`: a commit
   * lost its compare-and-set and goes on from what this gives (a record this process just
   * wrote will do: compare-and-set decides).
   */
  read (state: SessionState, afterConflict?: boolean): Promise<SessionRecord | undefined>
  /**
   * Stores `record` if the stored version is still `expected`. A backend whose cookie
   * carries the data clears `state.cookie` here, so that a new one is issued.
   */
  compareAndSet (state: SessionState, record: SessionRecord, expected: number): MaybePromise<boolean>
  /** Moves the expiry to `expiresAt` (same rule for `state.cookie`); false when the session no longer exists. */
  touch (state: SessionState, expiresAt: number): MaybePromise<boolean>
  destroy (state: Pick<SessionState, 'id' | 'key'>): Promise<void>
  /** Whether the session still exists where it is kept; regenerate() asks it of the session it replaces. */
  alive (state: Pick<SessionState, 'id' | 'key'>): MaybePromise<boolean>
  /** Runs the session's store work after its earlier work in this process, bounded in time. */
  exclusive<T> (state: Pick<SessionState, 'id' | 'key'>, operation: string, task: () => MaybePromise<T>): MaybePromise<T>
  /** The cookie value for the current state. */
  issue (state: SessionState): MaybePromise<string>
}

/**
 * The state of a loaded session. Every state is built by this function or `freshState`, with
 * the same fields in the same order: one object shape, which keeps property access on the
 * hot path fast (spreading a record into a literal was measured to cost microseconds).
 */
export function loadedState (
  id: string, key: string | undefined, record: SessionRecord, cookie: string | undefined, payload: Buffer | undefined
): SessionState {
  return { id, key, data: record.data, version: record.version, createdAt: record.createdAt, expiresAt: record.expiresAt, user: record.user, cookie, payload }
}

/** A fresh state: a new id that no store has seen. */
export function freshState (id: string, data: Record<string, unknown>, createdAt: number, expiresAt: number): SessionState {
  return { id, key: undefined, data, version: 0, createdAt, expiresAt, user: undefined, cookie: undefined, payload: undefined }
}

import type { SessionRecord } from '../store'

/** Lifetime of the records a case keeps live: far past every clock jump of a case. */
export const LIVE_MS = 3_600_000

export interface RecordShape {
  version?: number
  /** Milliseconds from now to `expiresAt`. */
  lifetimeMs?: number
  user?: string
}

/** A record created now; `user` is left out, not set to undefined, when none is given. */
export function record (data: Record<string, unknown>, { version = 1, lifetimeMs = LIVE_MS, user }: RecordShape = {}): SessionRecord {
  const now = Date.now()
  const written: SessionRecord = { data, version, createdAt: now, expiresAt: now + lifetimeMs }
  if (user !== undefined) written.user = user
  return written
}

/**
 * A record as read, made comparable with what was written: `user?: string` allows a store to
 * answer `user: undefined` for a record without one, so that key is dropped.
 */
export function comparable (read: SessionRecord | undefined): SessionRecord | undefined {
  if (read === null || typeof read !== 'object' || !Object.hasOwn(read, 'user') || read.user !== undefined) return read
  const { user: _none, ...rest } = read
  return rest
}

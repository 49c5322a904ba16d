import type { ResolvedOptions } from './options'
import type { SessionRecord } from './store'

type Timeouts = Pick<ResolvedOptions, 'idleMs' | 'absoluteMs'> & Partial<Pick<ResolvedOptions, 'users'>>

/** The idle deadline, never past the absolute one. */
export function expiryFor (options: Timeouts, now: number, createdAt: number): number {
  return Math.min(now + options.idleMs, createdAt + options.absoluteMs)
}

/** The record that follows `version`, expiring one idle window from now, filed under its user. */
export function nextRecord (options: Timeouts, data: Record<string, unknown>, version: number, createdAt: number): SessionRecord {
  const record: SessionRecord = { data, version: version + 1, createdAt, expiresAt: expiryFor(options, Date.now(), createdAt) }
  const user = options.users?.of(data)
  if (user !== undefined) record.user = user
  return record
}

/** Why a record is too old to use, from its own timestamps; undefined while it is live. */
export function expiredReason (options: Timeouts, record: SessionRecord): string | undefined {
  const now = Date.now()
  if (record.createdAt + options.absoluteMs <= now) return 'absolute timeout passed'
  if (record.expiresAt <= now) return 'idle timeout passed'
  return undefined
}

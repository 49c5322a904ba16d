import { setTimeout as sleep } from 'node:timers/promises'
import type { ChangeLog } from './changes'
import type { SessionContext } from './context'
import { SessionConflictError } from './errors'
import type { ConflictPolicy } from './options'
import type { SessionRecord } from './store'

/** Compare-and-set attempts before a commit gives up with FST_SESS_CONFLICT. */
export const MAX_ATTEMPTS = 10

export interface PendingWrite {
  key: string
  data: Record<string, unknown>
  version: number
  createdAt: number
  log: ChangeLog
  policy: ConflictPolicy
}

/** The idle deadline, never past the absolute one. */
export function expiryFor (ctx: SessionContext, now: number, createdAt: number): number {
  return Math.min(now + ctx.options.idleMs, createdAt + ctx.options.absoluteMs)
}

/** The record that follows `version`, expiring one idle window from now. */
export function nextRecord (ctx: SessionContext, data: Record<string, unknown>, version: number, createdAt: number): SessionRecord {
  return { data, version: version + 1, createdAt, expiresAt: expiryFor(ctx, Date.now(), createdAt) }
}

/**
 * Writes a session under compare-and-set and resolves conflicts by the request's
 * policy: 'merge' replays this request's change log onto the newer copy, 'overwrite'
 * writes this request's data over it, 'error' gives up at once.
 */
export async function writeRecord (ctx: SessionContext, pending: PendingWrite): Promise<SessionRecord> {
  const { store } = ctx
  let { data, version, createdAt } = pending
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const record = nextRecord(ctx, data, version, createdAt)
    if (await store.set(pending.key, record, version)) return record
    if (pending.policy === 'error') throw new SessionConflictError('a concurrent request changed this session first')
    const latest = await store.get(pending.key)
    if (latest === undefined && version !== 0) {
      // Writing now would bring back a session that another request destroyed (logout, regenerate).
      throw new SessionConflictError('a concurrent request destroyed this session')
    }
    if (latest !== undefined) {
      ({ version, createdAt } = latest)
      if (pending.policy === 'merge') data = pending.log.applyTo(latest.data)
    }
    await backoff(attempt)
  }
  throw new SessionConflictError(`gave up after ${MAX_ATTEMPTS} compare-and-set attempts`)
}

// Another process is writing too: back off a little, more on each attempt.
async function backoff (attempt: number): Promise<void> {
  if (attempt > 0) await sleep(Math.random() * 2 ** attempt)
}

/** Runs `attempt` until it reports success, bounded like every compare-and-set loop. */
export async function retry (attempt: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < MAX_ATTEMPTS; i++) {
    if (await attempt()) return
    await backoff(i)
  }
  throw new SessionConflictError(`gave up after ${MAX_ATTEMPTS} compare-and-set attempts`)
}

import { setTimeout as sleep } from 'node:timers/promises'
import type { Backend, SessionState } from './backends/backend'
import type { ChangeLog } from './change-log'
import { SessionConflictError } from './errors'
import { nextRecord } from './expiry'
import { then, type MaybePromise } from './maybe-promise'
import type { ConflictPolicy, ResolvedOptions } from './options'
import type { SessionRecord } from './store'

/** Compare-and-set attempts before a commit gives up with FST_SESS_CONFLICT. */
export const MAX_ATTEMPTS = 10

/** Waits before attempt `attempt + 1`; injectable so tests need not wait. */
export type Backoff = (attempt: number) => Promise<void>

// Another process is writing too: back off a little, more on each attempt.
export const randomBackoff: Backoff = async (attempt) => {
  if (attempt > 0) await sleep(Math.random() * 2 ** attempt)
}

export interface WriteContext {
  backend: Backend
  options: ResolvedOptions
  backoff: Backoff
}

export const DESTROYED = 'another request destroyed or regenerated it'

export function gaveUp (): Error {
  return new SessionConflictError(`gave up after ${MAX_ATTEMPTS} compare-and-set attempts`)
}

/**
 * Writes the session's data under compare-and-set and resolves conflicts by the request's
 * policy: 'merge' replays this request's change log onto the newer copy (unless a key it
 * read and changed was changed meanwhile), 'overwrite' writes this request's data over it,
 * 'error' gives up at once. Never brings back a record another request deleted.
 */
export function writeRecord (ctx: WriteContext, state: SessionState, log: ChangeLog, policy: ConflictPolicy, lost?: () => void): MaybePromise<SessionRecord> {
  // Uncontended (nearly always) the first compare-and-set wins; a sealed-cookie backend
  // answers it without waiting, and then the whole write needs no promise.
  const record = nextRecord(ctx.options, state.data, state.version, state.createdAt)
  return then(ctx.backend.compareAndSet(state, record, state.version), (stored) => stored ? record : retry(ctx, state, log, policy, lost))
}

// `lost` hears of every compare-and-set that lost (tracing counts conflicts).
async function retry (ctx: WriteContext, state: SessionState, log: ChangeLog, policy: ConflictPolicy, lost: (() => void) | undefined): Promise<SessionRecord> {
  lost?.()
  let { data, version, createdAt } = state
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    if (attempt > 0) {
      const record = nextRecord(ctx.options, data, version, createdAt)
      if (await ctx.backend.compareAndSet(state, record, version)) return record
      lost?.()
    }
    if (policy === 'error') throw new SessionConflictError('another request committed first')
    const latest = await ctx.backend.read(state, true)
    if (latest === undefined && version !== 0) throw new SessionConflictError(DESTROYED)
    if (latest !== undefined) {
      ({ version, createdAt } = latest)
      if (policy === 'merge') data = merged(log, latest)
    }
    await ctx.backoff(attempt)
  }
  throw gaveUp()
}

function merged (log: ChangeLog, latest: SessionRecord): Record<string, unknown> {
  // The key stays out of the message: messages reach clients.
  if (log.conflict(latest.data) !== undefined) throw new SessionConflictError('a value this request read and changed was changed by another request meanwhile')
  return log.applyTo(latest.data)
}

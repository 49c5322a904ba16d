import { hash } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { SessionState } from './backends/backend'
import { NoUserIndexError, SessionConflictError } from './errors'
import type { GuardedStore } from './guarded-store'
import type { MaybePromise } from './maybe-promise'
import type { ResolvedOptions } from './options'
import type { UserSession } from './store'
import type { UserDigest } from './user-digest'

/** One session of a user, as a "your devices" page shows it: no id, no cookie. */
export interface SessionInfo {
  createdAt: number
  /** When the session was last used, as far as its idle deadline tells (see the README). */
  lastActive: number
  expiresAt: number
  [meta: string]: unknown
}

export interface ListSessionsOptions {
  /** Picks what to show of each session's data (a device name, a sign-in place). */
  meta?: (data: Record<string, unknown>) => Record<string, unknown>
}

/** A store's per-user index, as the backend exposes it (records opened). */
export interface UserIndex {
  listUser (user: string): Promise<UserSession[]>
  destroyUser (user: string): Promise<number>
}

// Milliseconds at most that revokeUser() waits for the clock to pass its stamp.
const CLOCK_TICKS = 5
// Attempts at raising a stamp that other processes raise at the same moment.
const STAMP_ATTEMPTS = 10

function stampKey (user: string): string {
  return hash('sha256', 'revoked-before:' + user, 'base64url')
}

/**
 * Per-user "not before" stamps, for stores that cannot list a user's sessions: a session of
 * the user created at or before the stamp is over. A stamp is an ordinary record of a
 * server-side store, kept as long as a session can live. Lookups of one user made at the
 * same time share one store read; `cacheMs` lets a read answer later lookups too.
 */
export class Stamps {
  #store: GuardedStore
  #lifetimeMs: number
  #cacheMs: number
  #cache = new Map<string, { before: number, until: number }>()
  #pending = new Map<string, Promise<number>>()

  constructor (store: GuardedStore, lifetimeMs: number, cacheMs: number) {
    this.#store = store
    this.#lifetimeMs = lifetimeMs
    this.#cacheMs = cacheMs
  }

  /** The user's stamp (0 when there is none); `fresh` skips the cache. */
  before (user: string, fresh = false): MaybePromise<number> {
    const cached = this.#cache.get(user)
    if (!fresh && cached !== undefined && cached.until > Date.now()) return cached.before
    let pending = this.#pending.get(user)
    if (pending === undefined || fresh) {
      pending = this.#read(user)
      this.#pending.set(user, pending)
      const settled = pending
      void settled.then(() => { if (this.#pending.get(user) === settled) this.#pending.delete(user) }, () => this.#pending.delete(user))
    }
    return pending
  }

  /** Raises the user's stamp to `at`, unless another revocation raised it further. */
  async stamp (user: string, at: number): Promise<void> {
    const key = stampKey(user)
    for (let attempt = 0; attempt < STAMP_ATTEMPTS; attempt++) {
      const current = await this.#store.get(key)
      const version = current?.version ?? 0
      if (stampOf(current?.data) >= at) return this.#remember(user, stampOf(current?.data))
      const record = { data: { before: at }, version: version + 1, createdAt: at, expiresAt: at + this.#lifetimeMs }
      if (await this.#store.set(key, record, version)) return this.#remember(user, at)
    }
    throw new SessionConflictError(`the revocation stamp changed ${STAMP_ATTEMPTS} times while it was written`)
  }

  async #read (user: string): Promise<number> {
    const record = await this.#store.get(stampKey(user))
    const before = stampOf(record?.data)
    this.#remember(user, before)
    return before
  }

  #remember (user: string, before: number): void {
    if (this.#cacheMs === 0) return
    if (this.#cache.size >= 10_000) this.#cache.clear()
    this.#cache.set(user, { before, until: Date.now() + this.#cacheMs })
  }
}

function stampOf (data: Record<string, unknown> | undefined): number {
  const before = data?.before
  return typeof before === 'number' ? before : 0
}

/**
 * Ends and lists the sessions of a user (`userKey`): through the store's per-user index
 * where it has one, else through per-user stamps checked whenever a session is loaded.
 */
export class Revocations {
  #users: UserDigest | undefined
  #options: Pick<ResolvedOptions, 'idleMs'>
  #index: UserIndex | undefined
  #stamps: Stamps | undefined

  constructor (options: Pick<ResolvedOptions, 'idleMs' | 'users'>, index: UserIndex | undefined, stamps: Stamps | undefined) {
    this.#users = options.users
    this.#options = options
    this.#index = index
    this.#stamps = stamps
  }

  /** Whether a loaded session must be checked against its user's stamp. */
  get checksStamps (): boolean {
    return this.#stamps !== undefined
  }

  /**
   * Ends every session of the user. Resolves how many ended where the store can count them,
   * undefined where stamps end them (a sealed cookie cannot be counted). Resolves only once
   * the clock has passed the stamp, so a login right after it is not caught by it.
   */
  async revokeUser (userId: unknown): Promise<number | undefined> {
    const users = this.#digests(userId, 'revokeUser()')
    const index = this.#index
    if (index !== undefined) {
      const ended = await Promise.all(users.map((user) => index.destroyUser(user)))
      return ended.reduce((sum, n) => sum + n, 0)
    }
    const at = Date.now()
    const stamps = this.#stamps as Stamps
    await Promise.all(users.map((user) => stamps.stamp(user, at)))
    // A clock that does not move (a test's fake one) is not waited for.
    for (let tick = 0; tick < CLOCK_TICKS && Date.now() <= at; tick++) await sleep(1)
    return undefined
  }

  /** The user's live sessions, most recently active first. */
  async listSessions (userId: unknown, options: ListSessionsOptions = {}): Promise<SessionInfo[]> {
    const users = this.#digests(userId, 'listSessions()')
    const index = this.#index
    if (index === undefined) throw new NoUserIndexError('listSessions()', 'a store with a per-user index (listUser and destroyUser)')
    const lists = await Promise.all(users.map((user) => index.listUser(user)))
    const infos = lists.flat().map(({ record }) => this.#info(record.data, record.createdAt, record.expiresAt, options))
    return infos.sort((a, b) => b.lastActive - a.lastActive)
  }

  /** At load: whether the session was created at or before its user's stamp. */
  revoked (state: Pick<SessionState, 'user' | 'createdAt'>, fresh = false): MaybePromise<boolean> {
    const { user } = state
    if (user === undefined || this.#stamps === undefined) return false
    const before = this.#stamps.before(user, fresh)
    return typeof before === 'number' ? state.createdAt <= before : before.then((at) => state.createdAt <= at)
  }

  // The idle deadline is set one idle window after the last use, unless the absolute one
  // comes first: then the last use is at least that long before it.
  #info (data: Record<string, unknown>, createdAt: number, expiresAt: number, options: ListSessionsOptions): SessionInfo {
    const lastActive = Math.max(createdAt, Math.min(Date.now(), expiresAt - this.#options.idleMs))
    return { ...options.meta?.(data), createdAt, lastActive, expiresAt }
  }

  #digests (userId: unknown, method: string): string[] {
    if (this.#users === undefined) throw new NoUserIndexError(method, 'the userKey option')
    return this.#users.all(userId)
  }
}

import type { FastifyReply, FastifyRequest } from 'fastify'
import { freshState, type Backend, type SessionState } from './backends/backend'
import { ChangeLog } from './change-log'
import type { CsrfTokens } from './crypto/csrf-tokens'
import { newSessionId } from './crypto/ids'
import { CookieUndeliverableError, InsideUpdateError, InvalidKeyError, NotSerializableError, SessionConflictError, SessionDestroyedError } from './errors'
import { expiryFor, nextRecord } from './expiry'
import { isFlatJson, toJson } from './json'
import { then, type MaybePromise } from './maybe-promise'
import { isStateless, type ConflictPolicy, type SessionCookieOptions } from './options'
import { ReplyCookie, type CookieContext } from './reply-cookie'
import type { Revocations } from './revocations'
import type { SessionData, SessionRecord } from './store'
import { commitChannel, storeName, traced, type CommitTrace } from './tracing'
import { DESTROYED, gaveUp, MAX_ATTEMPTS, writeRecord, type WriteContext } from './write-record'

/** Key under which flash messages live in the session data. */
export const FLASH_KEY = '__flash'

type Flashes = Record<string, string[]>

/** What every session of one plugin registration shares. */
export interface SessionContext extends WriteContext, CookieContext {
  revocations: Revocations
  csrfTokens: CsrfTokens
}

/** The plugin's end-of-request commit; a symbol, so it stays off the public API. */
export const commitAtEnd = Symbol('fastify-sessions.commit')

/** What a commit does, decided once per commit. */
type CommitStep = 'nothing' | 'write' | 'check'

const hasOwn = Object.hasOwn

function checkKey (key: unknown): asserts key is string {
  // `__proto__` would be a prototype, not a key, wherever the data is assigned to.
  if (typeof key !== 'string' || key === '' || key === '__proto__') {
    throw new InvalidKeyError(typeof key === 'string' ? `"${key}"` : `a ${typeof key}`)
  }
}

// Strings, finite numbers, booleans, null and flat containers of them always have a JSON
// form: only other values are tried (a list of recent pages need not be written out to throw away).
function checkSerializable (key: string, value: unknown): void {
  if (!isFlatJson(value)) toJson(key, value)
}

// A traced commit tells what it did once it did it: a failure leaves `outcome` undefined.
function outcome (done: MaybePromise<void>, trace: CommitTrace | undefined, what: CommitTrace['outcome']): MaybePromise<void> {
  if (trace === undefined) return done
  return then(done, () => { trace.outcome = what })
}

function traceUpdate (trace: CommitTrace, stored: boolean): void {
  if (stored) trace.outcome = 'written'
  else trace.conflicts++
}

function flashesOf (value: unknown): Flashes {
  return value !== null && typeof value === 'object' ? value as Flashes : {}
}

/**
 * `request.session`: the data, what this request changed, and the lifecycle. Data access
 * is synchronous; everything that talks to the store returns a promise. Where the session
 * lives (a store, or sealed in the cookie) is the backend's business.
 */
export class Session {
  #ctx: SessionContext
  #backend: Backend
  #request: FastifyRequest
  // Null for a session from sessions.load(): a raw request has no reply to carry a cookie.
  #reply: FastifyReply | null
  #state!: SessionState
  #log = new ChangeLog()
  #destroyed = false
  // A stored session this one replaced (regenerate()): deleted once the new one is stored.
  #retired: SessionState | undefined
  // regenerate(): the new session is stored, and its cookie sent, even when it is empty.
  #mustWrite = false
  #touchRequested = false
  #cookie: ReplyCookie | undefined
  #ended = false
  // The last commit failed and nothing changed since: the error reply that usually follows
  // does not try the same commit again.
  #failed = false
  #inUpdate = false

  /** @internal The plugin creates sessions; applications never need to. */
  constructor (ctx: SessionContext, request: FastifyRequest, reply: FastifyReply | null, loaded?: SessionState) {
    this.#ctx = ctx
    this.#backend = ctx.backend
    this.#request = request
    this.#reply = reply
    if (loaded === undefined) this.#startOver({})
    else this.#state = loaded
    // `request.session.user = x` (another library's habit) would be silently lost: it throws.
    Object.preventExtensions(this)
  }

  get id (): string {
    return this.#state.id
  }

  /** True until the session has been stored once. */
  get isNew (): boolean {
    return this.#state.version === 0
  }

  get<K extends keyof SessionData & string> (key: K): SessionData[K] | undefined {
    const data = this.#state.data
    this.#log.read(data, key)
    return hasOwn(data, key) ? data[key] as SessionData[K] : undefined
  }

  set<K extends keyof SessionData & string> (key: K, value: SessionData[K] | undefined): void {
    this.#changing('set')
    checkKey(key)
    if (value === undefined) return this.delete(key)
    checkSerializable(key, value)
    this.#state.data[key] = value
    this.#log.set(key, value)
  }

  delete (key: keyof SessionData & string): void {
    this.#changing('delete')
    if (!hasOwn(this.#state.data, key)) return
    delete this.#state.data[key]
    this.#log.delete(key)
  }

  has (key: keyof SessionData & string): boolean {
    return hasOwn(this.#state.data, key)
  }

  clear (): void {
    this.#changing('clear')
    this.#state.data = {}
    this.#log.clear()
  }

  /** A deep copy of all data; changing it changes nothing in the session. */
  data (): Partial<SessionData> {
    return structuredClone(this.#state.data) as Partial<SessionData>
  }

  /** Adds a one-shot message, readable once with `flashes()`. */
  flash (type: string, message: string): void {
    this.#changing('flash')
    const all = flashesOf(this.#state.data[FLASH_KEY])
    // A computed key defines an own property, whatever the type is called (even `__proto__`).
    this.set(FLASH_KEY, { ...all, [type]: [...(hasOwn(all, type) ? all[type] : []), message] })
  }

  /** Returns and removes the messages of one type, or of every type. */
  flashes (type: string): string[]
  flashes (): Flashes
  flashes (type?: string): string[] | Flashes {
    if (this.#destroyed || !hasOwn(this.#state.data, FLASH_KEY)) return type === undefined ? {} : []
    const all = flashesOf(this.#state.data[FLASH_KEY])
    if (type === undefined) {
      this.delete(FLASH_KEY)
      return all
    }
    if (!hasOwn(all, type)) return []
    const rest = Object.fromEntries(Object.entries(all).filter(([name]) => name !== type))
    if (Object.keys(rest).length === 0) this.delete(FLASH_KEY)
    else this.set(FLASH_KEY, rest)
    return all[type]
  }

  /**
   * Gives the session a new id and empty data (call it at login and logout); `keep` lists
   * keys to carry over. The old record is deleted once the new one is stored, so a store
   * failing at login leaves the user as they were.
   */
  async regenerate (keep?: readonly string[]): Promise<void> {
    this.#changing('regenerate')
    this.#outsideUpdate('regenerate')
    this.#refuseWithoutCookie('regenerate', true)
    if (keep !== undefined && !Array.isArray(keep)) throw new InvalidKeyError('the keep list of regenerate()')
    const old = this.#state
    const kept: Record<string, unknown> = {}
    for (const key of keep ?? []) {
      checkKey(key)
      if (hasOwn(old.data, key)) kept[key] = old.data[key]
    }
    if (old.version > 0) this.#retired = old
    this.#startOver(kept)
    this.#mustWrite = true
  }

  /** Removes the record and expires the cookie. Final for this request. */
  async destroy (): Promise<void> {
    if (this.#destroyed) return
    this.#outsideUpdate('destroy')
    // A sealed session lives only in its cookie: without a new cookie it cannot end.
    const cookieless = this.#cookieless()
    if (cookieless) this.#refuseWithoutCookie('destroy', isStateless(this.#ctx.options.store))
    await this.#retire()
    const state = this.#state
    if (state.version > 0) await this.#backend.exclusive(state, 'delete', () => this.#backend.destroy(state))
    this.#destroyed = true
    state.data = {}
    this.#log.reset()
    if (!cookieless) this.#replyCookie().expire()
  }

  /** Commits now, e.g. before a redirect or a streamed reply. */
  async save (): Promise<void> {
    this.#changing('save')
    this.#outsideUpdate('save')
    if (this.#cookieless()) this.#refuseWithoutCookie('save', this.#commitChangesCookie())
    await this.#commit('save')
  }

  /**
   * Atomic read-modify-write, for values computed from the stored value (counters, lists).
   * Commits pending changes, runs `fn` and commits its changes under compare-and-set; after
   * a conflict it reads the newer copy and runs `fn` again. All or nothing: when `fn` throws,
   * none of its changes stay. `fn` must not save, update, reload, regenerate or destroy.
   */
  update (fn: (session: this) => void | Promise<void>): Promise<void> {
    try {
      this.#changing('update')
      this.#outsideUpdate('update')
      if (this.#cookieless()) this.#refuseWithoutCookie('update', this.#state.version === 0 || isStateless(this.#ctx.options.store))
      if (!commitChannel.hasSubscribers) return this.#update(fn, undefined)
      const trace = this.#commitTrace('update')
      return traced(commitChannel, trace, () => this.#update(fn, trace)) as Promise<void>
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /** Drops uncommitted changes and re-reads the stored copy. */
  async reload (): Promise<void> {
    this.#changing('reload')
    this.#outsideUpdate('reload')
    const state = this.#state
    const record = state.version > 0 ? await this.#backend.read(state) : undefined
    if (record !== undefined) return this.#adopt(record)
    // Gone meanwhile (expired, destroyed elsewhere): its id is never reused.
    if (state.version > 0) return this.#startOver({})
    state.data = {}
    this.#log.reset()
  }

  /** Extends the idle deadline at the end of this request. */
  touch (): void {
    this.#changing('touch')
    this.#touchRequested = true
  }

  /**
   * A token for a form field or a request header, bound to this session: valid until the
   * session ends or gets a new id (regenerate()). Each call gives a different token; all stay
   * valid. A session that was never stored is stored at the end of the request, cookie sent,
   * even with `saveUninitialized: false`: the token would be worthless otherwise.
   */
  csrfToken (): string {
    this.#changing('csrfToken')
    if (this.#state.version === 0) this.#mustWrite = true
    return this.#ctx.csrfTokens.issue(this.#state.id)
  }

  /** Whether `token` came from csrfToken() of this session, in constant time; never throws. */
  verifyCsrfToken (token: unknown): boolean {
    return !this.#destroyed && this.#ctx.csrfTokens.verify(this.#state.id, token)
  }

  /** Cookie attributes for this response only, e.g. a longer maxAge for "remember me". */
  options (cookie: SessionCookieOptions): void {
    this.#changing('options')
    this.#refuseWithoutCookie('options', true)
    this.#replyCookie().override(cookie)
  }

  /**
   * @internal The commit at the end of the request (onSend). Once per request, and not after
   * a commit that failed with nothing changed since (save() or update() in the route): the
   * error reply that follows does not run it again. Nor on a 5xx reply: what a failed route
   * changed half-way is not kept, so the session stays as the last commit left it (what
   * save(), update() or destroy() did before the failure stands). Undefined when it
   * finished without waiting, which is most requests.
   */
  [commitAtEnd] (): MaybePromise<void> {
    if (this.#ended || this.#failed) return undefined
    this.#ended = true
    if ((this.#reply as FastifyReply).statusCode >= 500) return undefined
    return this.#commit('end')
  }

  // Every call that changes the session or commits it comes through here.
  #changing (method: string): void {
    if (this.#destroyed) throw new SessionDestroyedError(method)
    this.#failed = false
  }

  // These would wait for the update that calls them: refused at once instead of a deadlock.
  #outsideUpdate (method: string): void {
    if (this.#inUpdate) throw new InsideUpdateError(method)
  }

  // No Set-Cookie can reach the client: a session from sessions.load() has no reply, and a
  // reply sent or hijacked (a websocket handler, after the upgrade) takes no more headers.
  #cookieless (): boolean {
    return this.#reply === null || this.#reply.sent
  }

  // What would last only through a new cookie is refused before it starts: stored without
  // one, a new session is a record no client can name, a regenerated one logs the user out.
  #refuseWithoutCookie (method: string, needsCookie: boolean): void {
    if (!needsCookie || !this.#cookieless()) return
    throw new CookieUndeliverableError(method, this.#reply === null ? 'sessions.load() has no reply' : 'the reply was already sent or hijacked')
  }

  // A commit now would store a session for the first time, or seal new data into the cookie.
  #commitChangesCookie (): boolean {
    this.#log.detectMutations(this.#state.data)
    return this.#needsWrite() && (this.#state.version === 0 || isStateless(this.#ctx.options.store))
  }

  /** Start over: a new id no store has seen, a new creation time, `data`, nothing changed. */
  #startOver (data: Record<string, unknown>): void {
    const now = Date.now()
    this.#state = freshState(newSessionId(), data, now, expiryFor(this.#ctx.options, now, now))
    this.#log.reset()
  }

  #take (record: SessionRecord): void {
    const state = this.#state
    state.data = record.data
    state.version = record.version
    state.createdAt = record.createdAt
    state.expiresAt = record.expiresAt
    state.user = record.user
  }

  /** Forget changes: back to `record` as stored. */
  #adopt (record: SessionRecord): void {
    this.#take(record)
    this.#log.reset()
  }

  #written (record: SessionRecord): void {
    this.#take(record)
    this.#log.committed(record.data)
    this.#mustWrite = false
    this.#touchRequested = false
  }

  // Commit: decide what to do, once, then do it; traced when someone listens.
  #commit (trigger: CommitTrace['trigger']): MaybePromise<void> {
    if (!commitChannel.hasSubscribers) return this.#commitNow(undefined)
    const trace = this.#commitTrace(trigger)
    return traced(commitChannel, trace, () => this.#commitNow(trace))
  }

  #commitTrace (trigger: CommitTrace['trigger']): CommitTrace {
    return { store: storeName(this.#ctx.options.store), async: false, trigger, outcome: undefined, conflicts: 0 }
  }

  #commitNow (trace: CommitTrace | undefined): MaybePromise<void> {
    try {
      const pending = this.#run(this.#decide(), trace)
      return pending instanceof Promise ? pending.catch((err: unknown) => { throw this.#failure(err) }) : pending
    } catch (err) {
      throw this.#failure(err)
    }
  }

  #failure (err: unknown): unknown {
    this.#failed = true
    return this.#explain(err)
  }

  #decide (): CommitStep {
    if (this.#destroyed) return 'nothing'
    this.#log.detectMutations(this.#state.data)
    if (this.#needsWrite()) return 'write'
    if (this.#state.version === 0) return 'nothing'
    return this.#wantsCookie(false) || this.#touchTarget() !== undefined ? 'check' : 'nothing'
  }

  #run (step: CommitStep, trace: CommitTrace | undefined): MaybePromise<void> {
    if (step === 'write') return outcome(this.#write(trace), trace, 'written')
    if (step === 'check') return this.#check(trace)
    return outcome(undefined, trace, 'nothing')
  }

  #needsWrite (): boolean {
    const state = this.#state
    if (this.#mustWrite) return true
    if (state.version === 0) return this.#ctx.options.saveUninitialized || Object.keys(state.data).length > 0
    return !this.#log.empty
  }

  #write (trace: CommitTrace | undefined): MaybePromise<void> {
    const state = this.#state
    const policy = this.#policy()
    const lost = trace === undefined ? undefined : () => { trace.conflicts++ }
    const stored = this.#backend.exclusive(state, 'write', () => writeRecord(this.#ctx, state, this.#log, policy, lost))
    return then(then(stored, (record) => {
      this.#written(record)
      return this.#retired === undefined ? undefined : then(this.#confirmRetired(), () => this.#retire())
    }), () => this.#issue(true))
  }

  // A regenerated session replaces one that must still stand once the new one is stored:
  // if another request destroyed it, or its user's sessions were all ended, meanwhile, the
  // new one goes too. Checked after the write, so a revocation that comes later still finds
  // the new record (filed under its user) or its creation time (before the stamp).
  #confirmRetired (): MaybePromise<void> {
    const retired = this.#retired as SessionState
    const standing = then(this.#backend.alive(retired), (alive) => alive && then(this.#ctx.revocations.revoked(retired, true), (revoked) => !revoked))
    return then(standing, (stands) => stands ? undefined : this.#undoRegenerate())
  }

  async #undoRegenerate (): Promise<never> {
    const state = this.#state
    this.#retired = undefined
    await this.#backend.exclusive(state, 'delete', () => this.#backend.destroy(state))
    throw new SessionConflictError(DESTROYED)
  }

  // Nothing to write, but the idle deadline is due to move or a cookie is due to be sent.
  // Either way the session must still exist: a request that loaded it before another one
  // destroyed or regenerated it must not send its cookie back.
  #check (trace: CommitTrace | undefined): MaybePromise<void> {
    const state = this.#state
    const target = this.#touchTarget()
    this.#touchRequested = false
    let alive = this.#backend.touch(state, target ?? state.expiresAt)
    if (alive instanceof Promise) alive = alive.catch((err: unknown) => this.#touchFailed(err))
    return then(alive, (found) => {
      if (!found) return outcome(undefined, trace, 'nothing')
      if (target !== undefined) state.expiresAt = target
      return outcome(this.#issue(target !== undefined), trace, target === undefined ? 'nothing' : 'touched')
    })
  }

  // A request that changed nothing does not fail because the deadline could not move; it
  // sends no cookie, since it cannot tell whether the session still exists.
  #touchFailed (err: unknown): boolean {
    this.#request.log.warn({ err }, 'fastify-sessions: could not extend the session expiry')
    return false
  }

  #retire (): MaybePromise<void> {
    const retired = this.#retired
    if (retired === undefined) return undefined
    return then(this.#backend.exclusive(retired, 'delete', () => this.#backend.destroy(retired)), () => {
      this.#retired = undefined
    })
  }

  #policy (): ConflictPolicy {
    const route = this.#request.routeOptions.config.session
    return (typeof route === 'object' ? route.conflict : undefined) ?? this.#ctx.options.conflict
  }

  // Updates wait for the session's other writes from this process, and refuse the calls that
  // would wait for the update itself. A sealed-cookie backend needs no waiting: a synchronous
  // `fn` then costs no promise but the one update() returns.
  #update (fn: (session: this) => void | Promise<void>, trace: CommitTrace | undefined): Promise<void> {
    return Promise.resolve(then(this.#commitNow(trace), () => this.#updateExclusively(fn, trace))).catch((err: unknown) => {
      throw this.#failure(err)
    })
  }

  #updateExclusively (fn: (session: this) => void | Promise<void>, trace: CommitTrace | undefined): MaybePromise<void> {
    this.#inUpdate = true
    let updated: MaybePromise<void>
    try {
      updated = this.#backend.exclusive(this.#state, 'update', () => this.#updateUntilStored(fn, trace))
    } catch (err) {
      this.#inUpdate = false
      throw err
    }
    if (!(updated instanceof Promise)) {
      this.#inUpdate = false
      return updated
    }
    return updated.finally(() => { this.#inUpdate = false })
  }

  // The first attempt runs on the copy this request holds (loaded or just committed, so
  // usually the latest): compare-and-set tells if it was not, and only then is the stored
  // copy read. Uncontended, an update costs one write and no read.
  #updateUntilStored (fn: (session: this) => void | Promise<void>, trace: CommitTrace | undefined): MaybePromise<void> {
    return then(this.#updateOnce(fn, trace), (stored) => stored ? undefined : this.#updateAgain(fn, trace))
  }

  async #updateAgain (fn: (session: this) => void | Promise<void>, trace: CommitTrace | undefined): Promise<void> {
    for (let attempt = 1; attempt < MAX_ATTEMPTS; attempt++) {
      await this.#ctx.backoff(attempt - 1)
      await this.#reread()
      if (await this.#updateOnce(fn, trace)) return
    }
    throw gaveUp()
  }

  async #reread (): Promise<void> {
    const state = this.#state
    if (state.version === 0) return
    const latest = await this.#backend.read(state, true)
    if (latest === undefined) throw new SessionConflictError(DESTROYED)
    this.#adopt(latest)
  }

  // All or nothing: a shallow copy restores the keys fn set, deleted or cleared, and the
  // change log (reset here, so it sees only fn) restores the values fn changed in place.
  #updateOnce (fn: (session: this) => void | Promise<void>, trace: CommitTrace | undefined): MaybePromise<boolean> {
    const before = { ...this.#state.data }
    this.#log.reset()
    let ran: void | Promise<void>
    try {
      ran = fn(this)
    } catch (err) {
      this.#rollBack(before)
      throw err
    }
    if (!(ran instanceof Promise)) return this.#storeUpdate(before, trace)
    return ran.then(() => this.#storeUpdate(before, trace), (err: unknown) => {
      this.#rollBack(before)
      throw err
    })
  }

  #rollBack (before: Record<string, unknown>): void {
    this.#state.data = this.#log.undoMutations(before)
    this.#log.reset()
  }

  // A lost compare-and-set takes fn's changes back at once: whether the next attempt runs
  // or the update gives up, they were never stored.
  #storeUpdate (before: Record<string, unknown>, trace: CommitTrace | undefined): MaybePromise<boolean> {
    const state = this.#state
    this.#log.detectMutations(state.data)
    if (!this.#needsWrite()) return true
    const record = nextRecord(this.#ctx.options, state.data, state.version, state.createdAt)
    const stored = this.#backend.compareAndSet(state, record, state.version)
    if (!(stored instanceof Promise)) return this.#updateStored(stored, record, before, trace)
    return stored.then((done) => this.#updateStored(done, record, before, trace), (err: unknown) => {
      this.#rollBack(before)
      throw err
    })
  }

  #updateStored (stored: boolean, record: SessionRecord, before: Record<string, unknown>, trace: CommitTrace | undefined): boolean {
    if (stored) this.#written(record)
    else this.#rollBack(before)
    if (trace !== undefined) traceUpdate(trace, stored)
    return stored
  }

  /** The new idle deadline when it should move now, else undefined. */
  #touchTarget (): number | undefined {
    const { options } = this.#ctx
    const state = this.#state
    const target = expiryFor(options, Date.now(), state.createdAt)
    const gain = target - state.expiresAt
    const due = this.#touchRequested || options.rolling ? gain > 0 : gain >= options.touchAfterMs
    return due ? target : undefined
  }

  #wantsCookie (moved: boolean): boolean {
    const cookie = this.#cookie
    if (this.#state.cookie === undefined || cookie?.overridden === true || this.#ctx.options.rolling) return true
    return moved && (cookie?.attributes ?? this.#ctx.options.cookie).maxAge !== undefined
  }

  #issue (moved: boolean): MaybePromise<void> {
    // Without a reply the cookie the client holds stays in use: one signed with an earlier
    // secret goes on verifying, and only the browser's copy of maxAge is not extended.
    if (!this.#wantsCookie(moved) || this.#cookieless()) return undefined
    return then(this.#backend.issue(this.#state), (value) => this.#replyCookie().issue(value))
  }

  // Created on first use: most replies send no session cookie.
  #replyCookie (): ReplyCookie {
    // Reached only with a reply: every caller either refuses or skips the cookie without one.
    this.#cookie ??= new ReplyCookie(this.#ctx, this.#request, this.#reply as FastifyReply, this.#backend.maxCookieBytes)
    return this.#cookie
  }

  // set() checks each value, but an object can still be changed into something JSON
  // cannot hold (a cycle, a BigInt inside) afterwards. Looked for only when a commit fails.
  #explain (err: unknown): unknown {
    for (const [key, value] of Object.entries(this.#state.data)) {
      try {
        toJson(key, value)
      } catch (found) {
        if (found instanceof NotSerializableError) return found
      }
    }
    return err
  }
}

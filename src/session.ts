import type { FastifyReply, FastifyRequest } from 'fastify'
import { ChangeLog } from './changes'
import { expiryFor, nextRecord, retry, writeRecord } from './commit'
import type { SessionContext, StatelessCookie } from './context'
import { cookieAttributes, EXPIRED } from './cookie-line'
import { newSessionId, storeKey } from './crypto/ids'
import { CookieTooLargeError, InvalidKeyError, NotSerializableError, SessionConflictError, SessionDestroyedError } from './errors'
import { overrideCookie, type ResolvedCookie, type SessionCookieOptions } from './options'
import type { SessionData, SessionRecord, StatelessStore } from './store'

/** Key under which flash messages live in the session data. */
export const FLASH_KEY = '__flash'

type Flashes = Record<string, string[]>

export interface LoadedSession {
  id: string
  /** The store key; undefined for a stateless store. */
  key: string | undefined
  record: SessionRecord
  /** The cookie was signed or sealed with an older secret and must be re-issued. */
  resign: boolean
  /** Stateless store: the incoming cookie, re-sent as is while nothing changes. */
  sealed?: string
  /** Stateless store: the cookie's plaintext payload, which reload() goes back to. */
  payload?: Buffer
}

const hasOwn = Object.hasOwn

function checkKey (key: unknown): asserts key is string {
  if (typeof key !== 'string' || key === '' || key === '__proto__') {
    throw new InvalidKeyError(`${typeof key === 'string' ? `"${key}"` : `a ${typeof key}`} is not a usable session key`)
  }
}

// Strings, finite numbers, booleans and null always have a JSON form: only other values are tried.
function checkSerializable (key: string, value: unknown): void {
  const kind = typeof value
  if (value === null || kind === 'string' || kind === 'boolean' || (kind === 'number' && Number.isFinite(value))) return
  serialize(key, value)
}

function serialize (key: string, value: unknown): string {
  const kind = typeof value
  if (kind === 'bigint' || kind === 'function' || kind === 'symbol') {
    throw new NotSerializableError(key, `a ${kind} has no JSON form`)
  }
  try {
    return JSON.stringify(value)
  } catch (err) {
    throw new NotSerializableError(key, (err as Error).message)
  }
}

function asBuffer (bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

let commit: (session: Session) => Promise<void> | undefined

/**
 * Commits a session at the end of a request (the plugin's onSend hook). Undefined when
 * there is nothing to do, which is most requests: they then pay for no promise at all.
 */
export function commitSession (session: Session): Promise<void> | undefined {
  return commit(session)
}

/**
 * `request.session`. Data access is synchronous; everything that talks to the
 * store returns a promise.
 */
export class Session {
  #ctx: SessionContext
  #request: FastifyRequest
  #reply: FastifyReply
  #id: string
  #key: string | undefined
  #data: Record<string, unknown> = {}
  #version = 0
  #createdAt = 0
  #expiresAt = 0
  #log = new ChangeLog()
  #watched: Map<string, string> | undefined
  #destroyed = false
  #regenerated = false
  #touchRequested = false
  #cookieChanged: boolean
  // Set by options(): this response's cookie attributes, already merged and checked.
  #cookieOptions: ResolvedCookie | undefined
  #cookieSent = false
  // Stateless store only: the sealed cookie for the current state, and the data it holds.
  #sealed: string | undefined
  #payload: Buffer | undefined

  static {
    commit = (session) => session.#commitIfNeeded()
  }

  /** @internal The plugin creates sessions; applications never need to. */
  constructor (ctx: SessionContext, request: FastifyRequest, reply: FastifyReply, loaded?: LoadedSession) {
    this.#ctx = ctx
    this.#request = request
    this.#reply = reply
    if (loaded === undefined) {
      this.#id = newSessionId()
      this.#createdAt = Date.now()
      this.#expiresAt = expiryFor(ctx, this.#createdAt, this.#createdAt)
      this.#cookieChanged = false
    } else {
      this.#id = loaded.id
      this.#key = loaded.key
      this.#adopt(loaded.record)
      this.#cookieChanged = loaded.resign
      this.#sealed = loaded.sealed
      this.#payload = loaded.payload
    }
  }

  get id (): string {
    return this.#id
  }

  /** True until the session has been stored once. */
  get isNew (): boolean {
    return this.#version === 0
  }

  get<K extends keyof SessionData & string> (key: K): SessionData[K] | undefined {
    if (!hasOwn(this.#data, key)) return undefined
    const value = this.#data[key]
    if (value !== null && typeof value === 'object') this.#watch(key, value)
    return value as SessionData[K]
  }

  set<K extends keyof SessionData & string> (key: K, value: SessionData[K] | undefined): void {
    this.#usable('set')
    checkKey(key)
    if (value === undefined) return this.delete(key)
    checkSerializable(key, value)
    this.#data[key] = value
    this.#log.set(key, value)
  }

  delete (key: keyof SessionData & string): void {
    this.#usable('delete')
    if (!hasOwn(this.#data, key)) return
    delete this.#data[key]
    this.#log.delete(key)
  }

  has (key: keyof SessionData & string): boolean {
    return hasOwn(this.#data, key)
  }

  clear (): void {
    this.#usable('clear')
    this.#data = {}
    this.#log.clear()
  }

  /** A deep copy of all data; changing it changes nothing in the session. */
  data (): Partial<SessionData> {
    return structuredClone(this.#data) as Partial<SessionData>
  }

  /** Adds a one-shot message, readable once with `flashes()`. */
  flash (type: string, message: string): void {
    this.#usable('flash')
    const all = { ...(this.#data[FLASH_KEY] as Flashes | undefined) }
    all[type] = [...(all[type] ?? []), message]
    this.set(FLASH_KEY, all)
  }

  /** Returns and removes the messages of one type, or of every type. */
  flashes (type: string): string[]
  flashes (): Flashes
  flashes (type?: string): string[] | Flashes {
    const all = (this.#data[FLASH_KEY] ?? {}) as Flashes
    if (!hasOwn(this.#data, FLASH_KEY) || this.#destroyed) return type === undefined ? {} : []
    if (type === undefined) {
      this.delete(FLASH_KEY)
      return all
    }
    const { [type]: taken = [], ...rest } = all
    if (Object.keys(rest).length === 0) this.delete(FLASH_KEY)
    else this.set(FLASH_KEY, rest)
    return taken
  }

  /**
   * Gives the session a new id (call it at login). The old record is destroyed now;
   * data is kept, or only the keys listed in `keep`.
   */
  async regenerate (keep?: readonly string[]): Promise<void> {
    this.#usable('regenerate')
    if (keep !== undefined && (!Array.isArray(keep) || !keep.every((k) => typeof k === 'string'))) {
      throw new InvalidKeyError('regenerate(keep) takes an array of key names')
    }
    if (this.#version > 0) await this.#destroyRecord()
    if (keep !== undefined) this.#data = Object.fromEntries(Object.entries(this.#data).filter(([k]) => keep.includes(k)))
    this.#id = newSessionId()
    this.#key = undefined
    this.#version = 0
    this.#createdAt = Date.now()
    this.#log.reset()
    this.#watched = undefined
    this.#regenerated = true
    this.#cookieChanged = true
  }

  /** Removes the record and expires the cookie. Final for this request. */
  async destroy (): Promise<void> {
    if (this.#destroyed) return
    if (this.#version > 0) await this.#destroyRecord()
    this.#destroyed = true
    this.#data = {}
    this.#log.reset()
    this.#watched = undefined
    const cookie = this.#cookie()
    this.#writeCookie(`${this.#ctx.options.cookieName}=${cookieAttributes(cookie, this.#secure(cookie), 0)}${EXPIRED}`)
  }

  /** Commits now, e.g. before a redirect or a streamed reply. */
  async save (): Promise<void> {
    this.#usable('save')
    await this.#commit()
  }

  /**
   * Atomic read-modify-write, for values computed from the stored value (counters, lists).
   * Commits pending changes, then runs `fn` on the latest stored copy and commits its
   * changes under compare-and-set, running `fn` again on the newer copy after a conflict.
   * `fn` must not call save() or update() itself.
   */
  async update (fn: (session: this) => void | Promise<void>): Promise<void> {
    this.#usable('update')
    if (this.#ctx.stateless !== undefined) {
      // The cookie is the only copy: there is no newer one to re-run fn against, and
      // the changes are sealed with the rest at the end of the request.
      return fn(this)
    }
    await this.#commit()
    const key = this.#storeKey()
    // The first attempt runs on the copy this request already holds (loaded or just
    // committed, so usually the latest): compare-and-set tells if it was not, and only
    // then is the stored copy read. Uncontended, an update costs one write and no read.
    let attempts = 0
    const attempt = (): Promise<boolean> => this.#updateOnce(key, fn, attempts++ > 0)
    await this.#ctx.queue.run(key, () => retry(attempt)).catch((err: unknown) => {
      throw this.#unserializable() ?? err
    })
  }

  /** Drops uncommitted changes and re-reads the stored copy. */
  async reload (): Promise<void> {
    this.#usable('reload')
    if (this.#ctx.stateless !== undefined) return this.#reloadSealed(this.#ctx.stateless.codec)
    const record = this.#version > 0 ? await this.#ctx.store.get(this.#storeKey()) : undefined
    this.#log.reset()
    this.#watched = undefined
    if (record !== undefined) return this.#adopt(record)
    if (this.#version > 0) {
      // The record is gone (expired or destroyed elsewhere); its id is never reused.
      this.#id = newSessionId()
      this.#key = undefined
      this.#version = 0
      this.#cookieChanged = true
    }
    this.#data = {}
  }

  /** Extends the idle deadline at the end of this request. */
  touch (): void {
    this.#usable('touch')
    this.#touchRequested = true
  }

  /** Cookie attributes for this response only, e.g. a longer maxAge for "remember me". */
  options (cookie: SessionCookieOptions): void {
    this.#usable('options')
    this.#cookieOptions = overrideCookie(this.#cookie(), cookie)
    this.#cookieChanged = true
  }

  // What reload() means without a store: back to the data of the last cookie read or sent.
  #reloadSealed (codec: StatelessStore): void {
    this.#log.reset()
    this.#watched = undefined
    const payload = this.#version === 0 || this.#payload === undefined ? undefined : codec.decode(this.#payload)
    this.#data = payload?.data ?? {}
  }

  #usable (method: string): void {
    if (this.#destroyed) throw new SessionDestroyedError(method)
  }

  #adopt (record: SessionRecord): void {
    this.#data = record.data
    this.#version = record.version
    this.#createdAt = record.createdAt
    this.#expiresAt = record.expiresAt
  }

  #storeKey (): string {
    this.#key ??= storeKey(this.#id)
    return this.#key
  }

  async #destroyRecord (): Promise<void> {
    if (this.#ctx.stateless !== undefined) return
    const key = this.#storeKey()
    await this.#ctx.queue.run(key, () => this.#ctx.store.destroy(key))
  }

  // In-place changes to values handed out by get() are found by comparing JSON.
  #watch (key: string, value: object): void {
    if (this.#log.touches(key)) return
    this.#watched ??= new Map()
    if (!this.#watched.has(key)) this.#watched.set(key, serialize(key, value))
  }

  #detectMutations (): void {
    if (this.#watched === undefined) return
    for (const [key, before] of this.#watched) {
      if (this.#log.touches(key) || !hasOwn(this.#data, key)) continue
      const value = this.#data[key]
      const after = serialize(key, value)
      if (after === before) continue
      this.#log.set(key, value)
      // Later changes (after an explicit save()) are measured against what is stored now.
      this.#watched.set(key, after)
    }
  }

  #needsWrite (): boolean {
    if (this.#regenerated) return true
    if (this.#version === 0) return this.#ctx.options.saveUninitialized || Object.keys(this.#data).length > 0
    return !this.#log.empty
  }

  // save() and update(): commit whatever changed, in-place changes included.
  async #commit (): Promise<void> {
    this.#detectMutations()
    await this.#commitDetected()
  }

  // In-place changes are already in the change log. Undefined when the commit finished
  // without waiting (a stateless store sealing inline): no promise for the common case.
  #commitDetected (): Promise<void> | undefined {
    let pending: Promise<void> | undefined
    try {
      pending = this.#commitOnce()
    } catch (err) {
      return Promise.reject(this.#unserializable() ?? err)
    }
    return pending?.catch((err: unknown) => { throw this.#unserializable() ?? err })
  }

  // set() checks each value, but an object can still be changed into something JSON
  // cannot hold (a cycle, a BigInt inside) afterwards. Looked for only when a write fails.
  #unserializable (): Error | undefined {
    for (const [key, value] of Object.entries(this.#data)) {
      try {
        serialize(key, value)
      } catch (err) {
        return err as Error
      }
    }
    return undefined
  }

  #commitIfNeeded (): Promise<void> | undefined {
    if (this.#destroyed) return undefined
    try {
      this.#detectMutations()
    } catch (err) {
      return Promise.reject(err)
    }
    if (this.#needsWrite()) return this.#commitDetected()
    if (this.#version === 0) return undefined
    return this.#wantsCookie(false) || this.#touchTarget() !== undefined ? this.#commitDetected() : undefined
  }

  // Promises only where there is waiting to do: the store, or sealing on the worker pool.
  #commitOnce (): Promise<void> | undefined {
    const stateless = this.#ctx.stateless !== undefined
    if (this.#needsWrite()) {
      // Without a store, writing is sealing, which #sendCookie does next.
      if (!stateless) return this.#write().then(() => this.#sendIfWanted(true))
      this.#written(nextRecord(this.#ctx, this.#data, this.#version, this.#createdAt))
      return this.#sendIfWanted(true)
    }
    if (this.#version === 0) return undefined
    if (stateless) return this.#sendIfWanted(this.#touchSealed())
    return this.#touch().then((extended) => this.#sendIfWanted(extended))
  }

  #sendIfWanted (extended: boolean): Promise<void> | undefined {
    return this.#version > 0 && this.#wantsCookie(extended) ? this.#sendCookie() : undefined
  }

  async #write (): Promise<void> {
    const key = this.#storeKey()
    const route = this.#request.routeOptions.config.session
    const policy = (typeof route === 'object' ? route.conflict : undefined) ?? this.#ctx.options.conflict
    const pending = { key, data: this.#data, version: this.#version, createdAt: this.#createdAt, log: this.#log, policy }
    this.#written(await this.#ctx.queue.run(key, () => writeRecord(this.#ctx, pending)))
  }

  #written (record: SessionRecord): void {
    // A stateless cookie carries the data, so every write is a new cookie.
    if (this.#version === 0 || this.#ctx.stateless !== undefined) this.#cookieChanged = true
    this.#sealed = undefined
    this.#adopt(record)
    this.#log.reset()
    this.#regenerated = false
    this.#touchRequested = false
  }

  async #updateOnce (key: string, fn: (session: this) => void | Promise<void>, reread: boolean): Promise<boolean> {
    if (reread && this.#version > 0) {
      const latest = await this.#ctx.store.get(key)
      if (latest === undefined) throw new SessionConflictError('a concurrent request destroyed this session')
      this.#adopt(latest)
    }
    this.#log.reset()
    this.#watched = undefined
    await fn(this)
    this.#detectMutations()
    if (!this.#needsWrite()) return true
    const version = this.#version
    const record = nextRecord(this.#ctx, this.#data, version, this.#createdAt)
    if (!(await this.#ctx.store.set(key, record, version))) return false
    this.#written(record)
    return true
  }

  /** The new idle deadline when it should move now, else undefined. */
  #touchTarget (): number | undefined {
    const target = expiryFor(this.#ctx, Date.now(), this.#createdAt)
    const gain = target - this.#expiresAt
    const due = this.#touchRequested ? gain > 0 : gain >= this.#ctx.options.touchAfterMs
    return due ? target : undefined
  }

  // Without a store, re-sealing the cookie with a new last-active time is the touch.
  #touchSealed (): boolean {
    const target = this.#touchTarget()
    if (target === undefined) return false
    this.#written({ data: this.#data, version: this.#version, createdAt: this.#createdAt, expiresAt: target })
    return true
  }

  async #touch (): Promise<boolean> {
    const { store } = this.#ctx
    const target = this.#touchTarget()
    if (target === undefined || store.touch === undefined) return false
    this.#touchRequested = false
    try {
      await store.touch(this.#storeKey(), target)
    } catch (err) {
      // Failing to extend the deadline must not fail a request that changed nothing.
      this.#request.log.warn({ err }, 'fastify-sessions: could not extend the session expiry')
      return false
    }
    this.#expiresAt = target
    return true
  }

  #wantsCookie (extended: boolean): boolean {
    if (this.#cookieChanged || this.#ctx.options.rolling) return true
    return extended && this.#cookie().maxAge !== undefined
  }

  #cookie (): ResolvedCookie {
    return this.#cookieOptions ?? this.#ctx.options.cookie
  }

  #secure (cookie: ResolvedCookie): boolean {
    return cookie.secure === 'auto' ? this.#request.protocol === 'https' : cookie.secure
  }

  #sendCookie (): Promise<void> | undefined {
    const { stateless } = this.#ctx
    const value = stateless === undefined ? this.#sign() : this.#seal(stateless)
    if (typeof value !== 'string') return value.then((sealed) => this.#setCookie(sealed))
    this.#setCookie(value)
  }

  #setCookie (value: string): void {
    const { options, stateless } = this.#ctx
    const line = `${options.cookieName}=${value}${this.#attributes()}`
    // Browsers drop a cookie that is too large without a word: fail loudly instead. Name,
    // value and attributes are ASCII (validated, base64url), so characters are bytes.
    if (stateless !== undefined && line.length > stateless.codec.maxCookieBytes) {
      throw new CookieTooLargeError(line.length, stateless.codec.maxCookieBytes)
    }
    this.#writeCookie(line)
    this.#cookieChanged = false
  }

  #attributes (): string {
    const cookie = this.#cookie()
    const secure = this.#secure(cookie)
    if (this.#cookieOptions !== undefined) return cookieAttributes(cookie, secure)
    const { attributes } = this.#ctx
    return secure ? attributes.secure : attributes.insecure
  }

  // Set-Cookie lines added to the reply's headers are kept by @fastify/cookie, which appends
  // the cookies of reply.setCookie() to them.
  #writeCookie (line: string): void {
    if (this.#cookieSent) this.#dropEarlierCookie()
    this.#reply.header('set-cookie', line)
    this.#cookieSent = true
    this.#noStore()
  }

  // A cookie from an earlier save() (or a destroy()) is already in the headers: one
  // session cookie per response is enough.
  #dropEarlierCookie (): void {
    const header = this.#reply.getHeader('set-cookie') ?? []
    const prefix = this.#ctx.options.cookieName + '='
    const kept = [header].flat().map(String).filter((line) => !line.startsWith(prefix))
    this.#reply.removeHeader('set-cookie')
    if (kept.length > 0) this.#reply.header('set-cookie', kept)
  }

  // An issued cookie is known to be authentic: its next request skips the HMAC check.
  #sign (): string {
    const cookie = this.#ctx.signer.sign(this.#id)
    this.#ctx.signed.add(cookie, { id: this.#id, key: this.#storeKey(), current: true })
    return cookie
  }

  // Not added to the recent cookies: many issued cookies never come back (the next write
  // replaces them), and keeping them all costs more in garbage collection than it saves.
  #seal ({ codec, sealer }: StatelessCookie): string | Promise<string> {
    if (this.#sealed !== undefined) return this.#sealed
    const lastActive = Date.now()
    const payload = asBuffer(codec.encode({ id: this.#id, data: this.#data, createdAt: this.#createdAt, lastActive }))
    const name = this.#ctx.options.cookieName
    const inline = sealer.sealInline(name, payload)
    if (inline !== undefined) return this.#sealedAs(inline, payload, lastActive)
    return sealer.seal(name, payload).then((sealed) => this.#sealedAs(sealed, payload, lastActive))
  }

  #sealedAs (sealed: string, payload: Buffer, lastActive: number): string {
    this.#sealed = sealed
    this.#payload = payload
    this.#expiresAt = expiryFor(this.#ctx, lastActive, this.#createdAt)
    return sealed
  }

  #noStore (): void {
    if (!this.#reply.hasHeader('cache-control')) this.#reply.header('cache-control', 'no-store')
  }
}

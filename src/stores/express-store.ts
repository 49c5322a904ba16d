import { UnusableRecordError } from '../errors'
import { KeyedQueue } from '../keyed-queue'
import type { SessionRecord, SessionStore } from '../store'
import { callbackStore, fail, methods } from '../validate'

/** The callback an express-session store calls when it is done: an error, or what it read. */
export type ExpressStoreCallback = (err?: any, value?: any) => unknown

/**
 * An express-session store (connect-redis, connect-pg-simple, memorystore, …): methods that
 * take the session id and call back last.
 */
export interface ExpressStore {
  get (sid: string, callback: ExpressStoreCallback): unknown
  set (sid: string, session: any, callback: ExpressStoreCallback): unknown
  destroy (sid: string, callback: ExpressStoreCallback): unknown
}

/**
 * What the adapter hands the store as the express session. The stores compute their expiry
 * from `cookie`: `expires` (connect-redis, connect-pg-simple) or `maxAge` in milliseconds
 * (memorystore). The record travels beside it under short names, the data last.
 */
interface StoredSession {
  cookie: { expires: string, originalMaxAge: number, maxAge: number }
  v: number
  c: number
  e: number
  u?: string
  d: Record<string, unknown>
}

type Method = 'get' | 'set' | 'destroy'

function toSession ({ data, version, createdAt, expiresAt, user }: SessionRecord, now: number): StoredSession {
  // Never 0: memorystore's cache reads a lifetime of 0 as "keep for ever".
  const maxAge = Math.max(1, expiresAt - now)
  const session: StoredSession = { cookie: { expires: new Date(expiresAt).toISOString(), originalMaxAge: maxAge, maxAge }, v: version, c: createdAt, e: expiresAt, d: data }
  if (user !== undefined) session.u = user
  return session
}

function isObject (value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

// A session this adapter did not write (another app's, under the same prefix) is the record's
// fault, not the store's: the plugin replaces it.
function toRecord (stored: unknown): SessionRecord {
  if (!isObject(stored) || !isObject(stored.d) || typeof stored.v !== 'number' || typeof stored.c !== 'number' || typeof stored.e !== 'number') {
    throw new UnusableRecordError('it is not a session fromExpressStore wrote')
  }
  const record: SessionRecord = { data: stored.d, version: stored.v, createdAt: stored.c, expiresAt: stored.e }
  if (typeof stored.u === 'string') record.user = stored.u
  return record
}

/**
 * Calls one callback-style method. The first settlement counts: a store that calls back twice,
 * or calls back and also rejects the promise it returns (connect-redis 8's methods return one
 * besides calling back), is heard once; a store that throws, or whose promise rejects without a
 * callback, fails this call only, and no rejection is left unhandled.
 */
function invoke<T> (store: ExpressStore, method: Method, args: unknown[]): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false
    const settle = (err: unknown, value?: unknown): void => {
      if (settled) return
      settled = true
      if (err === undefined || err === null) resolve(value as T)
      else reject(err)
    }
    const failed = (err: unknown): void => settle(err ?? new Error(`the express-session store's ${method}() failed without an error`))
    try {
      const returned = (store[method] as (...a: unknown[]) => unknown).call(store, ...args, settle) as PromiseLike<unknown> | undefined
      if (typeof returned?.then === 'function') returned.then(undefined, failed)
    } catch (err) {
      failed(err)
    }
  })
}

/**
 * The contract of src/store.ts over an express-session store. Such stores have no
 * compare-and-set: a write reads the record, compares its version and writes, one after
 * another. The writes of one key are queued here, so that no other write of this process comes
 * in between (not every caller goes through the plugin's queue: revocation stamps, the
 * conformance suite); between processes nothing stops it, which `compareAndSet: 'process'`
 * declares for the plugin to warn about.
 */
class ExpressStoreAdapter implements SessionStore {
  readonly compareAndSet = 'process'
  #store: ExpressStore
  #writes = new KeyedQueue()

  constructor (store: ExpressStore) {
    this.#store = store
  }

  get (key: string): Promise<SessionRecord | undefined> {
    return this.#live(key)
  }

  set (key: string, record: SessionRecord, expectedVersion: number): Promise<boolean> {
    return this.#writes.run(key, async () => {
      if (((await this.#live(key))?.version ?? 0) !== expectedVersion) return false
      await this.#write(key, record)
      return true
    })
  }

  destroy (key: string): Promise<void> {
    return this.#writes.run(key, () => invoke<void>(this.#store, 'destroy', [key]))
  }

  // The stores' own touch moves only the backend's expiry (connect-redis EXPIRE, connect-pg-simple
  // the expire column), not the expiry kept in the session, which decides: the record is rewritten.
  touch (key: string, expiresAt: number): Promise<boolean> {
    return this.#writes.run(key, async () => {
      const record = await this.#live(key)
      if (record === undefined) return false
      await this.#write(key, { ...record, expiresAt })
      return true
    })
  }

  // The application's clock decides: a record past its expiresAt is missing, even while the
  // backend, counting whole seconds, still holds it.
  async #live (key: string): Promise<SessionRecord | undefined> {
    const stored = await invoke<unknown>(this.#store, 'get', [key])
    if (stored === undefined || stored === null) return undefined
    const record = toRecord(stored)
    return record.expiresAt > Date.now() ? record : undefined
  }

  #write (key: string, record: SessionRecord): Promise<void> {
    return invoke<void>(this.#store, 'set', [key, toSession(record, Date.now())])
  }
}

/**
 * Adapts an express-session store to this plugin's store contract:
 * `store: fromExpressStore(new RedisStore({ client }))`. Its compare-and-set holds within one
 * process only; prefer a native store where there is one.
 */
export function fromExpressStore (store: ExpressStore): SessionStore {
  const given = methods('fromExpressStore store', store, ['get', 'set', 'destroy'])
  if (!callbackStore(given)) {
    fail('fromExpressStore store', 'is not an express-session store (its get() and destroy() take no callback): pass a fastify-sessions store as the store option directly')
  }
  return new ExpressStoreAdapter(store)
}

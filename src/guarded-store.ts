import { Deadlines } from './deadlines'
import { RecordTooLargeError, StoreUnavailableError, UnusableRecordError } from './errors'
import { performance } from 'node:perf_hooks'
import { KeyedQueue, start } from './keyed-queue'
import type { MaybePromise } from './maybe-promise'
import type { SessionRecord, SessionStore, UserSession } from './store'
import { storeChannel, storeName, traced, type StoreOperation } from './tracing'

// What each store method does, in the words of FST_SESS_STORE_UNAVAILABLE's message.
const ACTION: Record<StoreOperation, string> = { get: 'read', set: 'write', touch: 'touch', destroy: 'delete', listUser: 'list', destroyUser: 'delete' }

/** Why a record is not one the plugin can use; undefined when it is. */
function recordFault (record: unknown): string | undefined {
  if (record === null || typeof record !== 'object') return 'not an object'
  const { data, version, createdAt, expiresAt, user } = record as Partial<SessionRecord>
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return 'data is not an object'
  if (!Number.isSafeInteger(version) || (version as number) < 1) return 'version is not a positive integer'
  if (!Number.isFinite(createdAt) || !Number.isFinite(expiresAt)) return 'times are not numbers'
  // The user digest is compared with revocation stamps and filed under: a string or nothing.
  if (user !== undefined && typeof user !== 'string') return 'user is not a string'
  return undefined
}

function usable (record: SessionRecord | undefined): SessionRecord | undefined {
  if (record === undefined) return undefined
  const fault = recordFault(record)
  if (fault !== undefined) throw new UnusableRecordError(fault)
  return record
}

/**
 * The one place that makes a store safe to call from a request: every call is bounded by
 * `storeTimeout`, every failure becomes FST_SESS_STORE_UNAVAILABLE (an unusable record
 * stays UnusableRecordError), records are checked before use, and the writes of one session
 * from this process run one after another. Stores keep only their backend's mechanics.
 */
export class GuardedStore {
  #store: SessionStore
  #deadlines: Deadlines
  // When a task of a key last failed by timing out (monotonic ms), and which errors were
  // timeouts. The map holds stalled keys only, until the key's queue runs dry.
  #stalled = new Map<string, number>()
  #queue = new KeyedQueue((key) => this.#stalled.delete(key))
  #timeouts = new WeakSet<Error>()
  #name: string

  constructor (store: SessionStore, timeoutMs: number) {
    this.#store = store
    this.#name = storeName(store)
    this.#deadlines = new Deadlines(timeoutMs)
  }

  get (key: string): Promise<SessionRecord | undefined> {
    return this.#call('get', () => this.#store.get(key), usable)
  }

  /** `noted` sees the outcome before the promise settles: bookkeeping without a promise of its own. */
  set (key: string, record: SessionRecord, expectedVersion: number, noted?: (stored: boolean) => boolean): Promise<boolean> {
    return this.#call('set', () => this.#store.set(key, record, expectedVersion), noted)
  }

  destroy (key: string): Promise<void> {
    return this.#call('destroy', () => this.#store.destroy(key))
  }

  /** Whether the store keeps a per-user index (listUser and destroyUser). */
  get indexesUsers (): boolean {
    return this.#store.listUser !== undefined
  }

  /** The live records filed under `user`; entries the plugin cannot use are left out. */
  listUser (user: string): Promise<UserSession[]> {
    const store = this.#store as Required<SessionStore>
    return this.#call('listUser', () => store.listUser(user), usableEntries)
  }

  destroyUser (user: string): Promise<number> {
    const store = this.#store as Required<SessionStore>
    return this.#call('destroyUser', () => store.destroyUser(user))
  }

  /**
   * Moves the expiry and tells whether the record still exists. A store without `touch`
   * moves expiries on writes only: the record is read to learn whether it exists.
   */
  touch (key: string, expiresAt: number): Promise<boolean> {
    const store = this.#store
    if (store.touch === undefined) return this.get(key).then((record) => record !== undefined, () => false)
    return this.#call('touch', () => (store.touch as NonNullable<SessionStore['touch']>)(key, expiresAt)).then((found) => found === true)
  }

  /** Whether another task of `key` waits behind the one running (see exclusive()). */
  waiting (key: string): boolean {
    return this.#queue.waiting(key)
  }

  /**
   * Runs `task` after the earlier tasks of the same key. The bound covers the wait in the
   * queue too: a request waits about `storeTimeout` at most, however many commits of its
   * session are ahead of it. A task does not start when its request gave up, nor when a
   * task ahead of it timed out while it waited: it would most likely wait as long again,
   * and the store gets no pile of calls the moment it answers again. A task with nothing
   * ahead of it (nearly always) starts at once; its store calls are bounded one by one.
   */
  exclusive<T> (key: string, operation: string, task: () => MaybePromise<T>): Promise<T> {
    const run = (): Promise<T> => start(task).catch((err: unknown) => this.#noteStall(key, err))
    if (!this.#queue.busy(key)) return this.#queue.run(key, run)
    let abandoned = false
    const queuedAt = performance.now()
    const queued = this.#queue.run(key, () => {
      if (abandoned || (this.#stalled.get(key) ?? -1) >= queuedAt) return Promise.reject(this.#timedOut(operation))
      return run()
    })
    return this.#deadlines.bound(queued, () => {
      abandoned = true
      return this.#timedOut(operation)
    })
  }

  #noteStall (key: string, err: unknown): never {
    if (err instanceof StoreUnavailableError && this.#timeouts.has(err)) this.#stalled.set(key, performance.now())
    throw err
  }

  // Every store call of every request goes through here, traced as one operation.
  #call<T> (operation: StoreOperation, start: () => Promise<T>, check?: (value: T) => T): Promise<T> {
    if (!storeChannel.hasSubscribers) return this.#bounded(ACTION[operation], start, check)
    const trace = { store: this.#name, async: false, operation }
    return traced(storeChannel, trace, () => this.#bounded(ACTION[operation], start, check)) as Promise<T>
  }

  // One promise per call, whatever happens: the bound, the classification of failures and
  // the check of what came back all settle it directly.
  #bounded<T> (operation: string, start: () => Promise<T>, check?: (value: T) => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const deadline = this.#deadlines.add(() => reject(this.#timedOut(operation)))
      let pending: Promise<T>
      try {
        pending = start()
      } catch (err) {
        pending = Promise.reject(err)
      }
      pending.then((value) => {
        this.#deadlines.remove(deadline)
        try {
          resolve(check === undefined ? value : check(value))
        } catch (err) {
          reject(err)
        }
      }, (err: unknown) => {
        this.#deadlines.remove(deadline)
        reject(failure(operation, err))
      })
    })
  }

  #timedOut (operation: string): Error {
    const err = new StoreUnavailableError(operation, `timed out after ${this.#deadlines.ms / 1000} s`)
    this.#timeouts.add(err)
    return err
  }
}

function usableEntries (entries: UserSession[]): UserSession[] {
  if (!Array.isArray(entries)) throw new StoreUnavailableError('list', 'returned something that is not an array')
  return entries.filter((entry) => typeof entry?.key === 'string' && recordFault(entry.record) === undefined)
}

// A record too large for the store is the session's fault, not an outage: it keeps its code.
function failure (operation: string, err: unknown): Error {
  if (err instanceof StoreUnavailableError || err instanceof UnusableRecordError || err instanceof RecordTooLargeError) return err
  return new StoreUnavailableError(operation, 'failed', { cause: err })
}

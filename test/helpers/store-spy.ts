import { MemoryStore } from '../../src/index'
import type { SessionRecord, SessionStore } from '../../src/store'

export type StoreMethod = 'get' | 'set' | 'destroy' | 'touch'

/**
 * What a method does instead of calling the inner store:
 * - `'reject'`: rejects like a store that lost its server;
 * - `'throw'`: throws before returning a promise, like a store with a bug;
 * - `'hang'`: never settles, like a server that stopped answering;
 * - `{ reject }` / `{ resolve }`: rejects with or resolves to the given value (a value of
 *   any shape: a string, a record the plugin cannot use, an expired record).
 */
export type Fault = 'reject' | 'throw' | 'hang' | { reject: unknown } | { resolve: unknown }

export interface StoreSpyOptions {
  /** The store the calls go to. Default: a new MemoryStore. */
  inner?: SessionStore
  /** `false` for a store without the optional touch(). */
  touch?: boolean
  /** Methods that misbehave from the start; `fail()` and `heal()` change them later. */
  faults?: Partial<Record<StoreMethod, Fault>>
}

const CONNECTION_REFUSED = 'connection refused'

function zeroCalls (): Record<StoreMethod, number> {
  return { get: 0, set: 0, destroy: 0, touch: 0 }
}

/**
 * A store for tests to watch and to break: counts calls (which requests do store I/O),
 * keeps the keys and records it was handed (what a dump of the store would show), and lets
 * any method fail, hang or answer a chosen value. Every test that needs more than a plain
 * MemoryStore uses this one.
 */
export class StoreSpy implements SessionStore {
  readonly inner: SessionStore
  calls = zeroCalls()
  /** Every key set() was called with, in order. */
  keys: string[] = []
  /** The JSON of each record stored and not destroyed since, by key. */
  records = new Map<string, string>()
  touch?: (key: string, expiresAt: number) => Promise<boolean>
  /** Calls left pending forever by a 'hang'. */
  hung = 0
  #faults: Partial<Record<StoreMethod, Fault>>
  #next: Record<StoreMethod, Array<Fault | 'pass'>> = { get: [], set: [], destroy: [], touch: [] }

  constructor (options: StoreSpyOptions = {}) {
    this.inner = options.inner ?? new MemoryStore()
    this.#faults = { ...options.faults }
    // An own property, present or not, as in a store object that has no touch().
    if (options.touch !== false) this.touch = (key, expiresAt) => this.#touch(key, expiresAt)
  }

  get total (): number {
    return this.calls.get + this.calls.set + this.calls.destroy + this.calls.touch
  }

  /** Starts counting again from zero. */
  reset (): void {
    this.calls = zeroCalls()
  }

  fail (method: StoreMethod, fault: Fault = 'reject'): void {
    this.#faults[method] = fault
  }

  /** The next calls of `method` behave so, one each ('pass': reach the inner store); then as before. */
  next (method: StoreMethod, ...faults: Array<Fault | 'pass'>): void {
    this.#next[method].push(...faults)
  }

  /** Lets `method` (default: every method) reach the inner store again. */
  heal (method?: StoreMethod): void {
    if (method === undefined) {
      this.#faults = {}
      this.#next = { get: [], set: [], destroy: [], touch: [] }
    } else {
      delete this.#faults[method]
      this.#next[method] = []
    }
  }

  /** Every record stored, one JSON text per line. */
  dump (): string {
    return [...this.records.values()].join('\n')
  }

  get (key: string): Promise<SessionRecord | undefined> {
    return this.#call('get', () => this.inner.get(key))
  }

  set (key: string, record: SessionRecord, expectedVersion: number): Promise<boolean> {
    this.keys.push(key)
    return this.#call('set', async () => {
      const written = await this.inner.set(key, record, expectedVersion)
      if (written) this.records.set(key, JSON.stringify(record))
      return written
    })
  }

  destroy (key: string): Promise<void> {
    return this.#call('destroy', async () => {
      this.records.delete(key)
      return this.inner.destroy(key)
    })
  }

  async close (): Promise<void> {
    return this.inner.close?.()
  }

  #touch (key: string, expiresAt: number): Promise<boolean> {
    return this.#call('touch', async () => {
      const touch = this.inner.touch
      if (touch === undefined) throw new Error('the inner store has no touch()')
      return touch.call(this.inner, key, expiresAt)
    })
  }

  #call<T> (method: StoreMethod, call: () => Promise<T>): Promise<T> {
    this.calls[method]++
    const queued = this.#next[method].shift()
    const fault = queued === undefined ? this.#faults[method] : queued === 'pass' ? undefined : queued
    if (fault === undefined) return call()
    if (fault === 'throw') throw new Error('thrown, not rejected')
    if (fault === 'hang') {
      this.hung++
      return new Promise<T>(() => {})
    }
    if (fault === 'reject') return Promise.reject(new Error(CONNECTION_REFUSED))
    return 'reject' in fault ? Promise.reject(fault.reject) : Promise.resolve(fault.resolve as T)
  }
}

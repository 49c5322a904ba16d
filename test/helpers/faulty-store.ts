import type { SessionRecord } from '../../src/store'
import { CountingStore } from './counting-store'

/**
 * What one store call does: answer from the MemoryStore inside, reject with
 * `new Error('down')`, never settle, or answer `value` without asking the MemoryStore.
 */
export type Behaviour = 'work' | 'reject' | 'hang' | { answer: unknown }

export type StoreMethod = 'get' | 'set' | 'destroy' | 'touch'

const METHODS: readonly StoreMethod[] = ['get', 'set', 'destroy', 'touch']

function working (): Record<StoreMethod, Behaviour> {
  return { get: 'work', set: 'work', destroy: 'work', touch: 'work' }
}

/**
 * A CountingStore whose calls can fail, per method: for every later call (`always`) or
 * for the next calls only (`next`). Every call is counted, whatever it did.
 */
export class FaultyStore extends CountingStore {
  #standing = working()
  #queued: Record<StoreMethod, Behaviour[]> = { get: [], set: [], destroy: [], touch: [] }
  /** Calls that were left pending forever. */
  hung = 0

  /** Every later call of `method` behaves so, until changed. */
  always (method: StoreMethod, behaviour: Behaviour): this {
    this.#standing[method] = behaviour
    return this
  }

  /** The next calls of `method` behave so, one behaviour per call; then the standing behaviour again. */
  next (method: StoreMethod, ...behaviours: Behaviour[]): this {
    this.#queued[method].push(...behaviours)
    return this
  }

  /** Every method works again. Calls already left pending stay pending. */
  heal (): void {
    this.#standing = working()
    for (const method of METHODS) this.#queued[method] = []
  }

  override get (key: string): Promise<SessionRecord | undefined> {
    return this.#call('get', () => super.get(key))
  }

  override set (key: string, record: SessionRecord, expected: number): Promise<boolean> {
    return this.#call('set', () => super.set(key, record, expected))
  }

  override destroy (key: string): Promise<void> {
    return this.#call('destroy', () => super.destroy(key))
  }

  override touch (key: string, expiresAt: number): ReturnType<CountingStore['touch']> {
    return this.#call('touch', () => super.touch(key, expiresAt))
  }

  #call<T> (method: StoreMethod, work: () => Promise<T>): Promise<T> {
    const behaviour = this.#queued[method].shift() ?? this.#standing[method]
    if (behaviour === 'work') return work()
    this.calls[method]++
    if (behaviour === 'reject') return Promise.reject(new Error('down'))
    if (behaviour === 'hang') {
      this.hung++
      return new Promise<never>(() => {})
    }
    return Promise.resolve(behaviour.answer as T)
  }
}

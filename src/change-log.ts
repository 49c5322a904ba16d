import { parseJson, toJson } from './json'

const DELETED = Symbol('deleted')
// What a read of a missing key is recorded as: JSON never produces an empty string.
const ABSENT = ''

function jsonOf (data: Record<string, unknown>, key: string): string {
  return Object.hasOwn(data, key) ? toJson(key, data[key]) : ABSENT
}

// Defined, not assigned: a key read from stored data may be `__proto__`, and assigning it
// would replace the object's prototype instead of setting a value.
function put (data: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(data, key, { value, writable: true, enumerable: true, configurable: true })
}

/**
 * What one request did to a session's data: the keys it wrote and the keys it read (with
 * their JSON as first read). Writes let a commit that lost a compare-and-set be replayed,
 * key by key, onto the newer stored copy; reads tell which values were changed in place and
 * which keys were read and then changed, whose replay would silently undo another request.
 */
export class ChangeLog {
  #cleared = false
  // Both created on first use: most requests read one key or none, and write nothing.
  #writes: Map<string, unknown> | undefined
  #reads: Map<string, string> | undefined
  // Whether any value read is an object, the only kind that can change in place.
  #readObjects = false

  get empty (): boolean {
    return !this.#cleared && (this.#writes === undefined || this.#writes.size === 0)
  }

  touches (key: string): boolean {
    return this.#cleared || this.#writes?.has(key) === true
  }

  /** Records the value a key had when the request first read it. */
  read (data: Record<string, unknown>, key: string): void {
    if (this.#reads?.has(key) === true || this.touches(key)) return
    this.#reads ??= new Map()
    this.#reads.set(key, jsonOf(data, key))
    const value = data[key]
    if (value !== null && typeof value === 'object') this.#readObjects = true
  }

  set (key: string, value: unknown): void {
    this.#writes ??= new Map()
    this.#writes.set(key, value)
  }

  delete (key: string): void {
    this.set(key, DELETED)
  }

  /** A clear supersedes every earlier write of this request. */
  clear (): void {
    this.#cleared = true
    this.#writes = undefined
  }

  /** Logs the values read and then changed in place (`get('cart').push(x)`) as writes. */
  detectMutations (data: Record<string, unknown>): void {
    if (this.#reads === undefined || !this.#readObjects) return
    for (const [key, before] of this.#reads) {
      const value = data[key]
      if (this.touches(key) || value === null || typeof value !== 'object' || !Object.hasOwn(data, key)) continue
      if (toJson(key, value) !== before) this.set(key, value)
    }
  }

  /** Forgets everything: the request starts again from the data it now holds. */
  reset (): void {
    this.#cleared = false
    this.#writes = undefined
    this.#reads = undefined
    this.#readObjects = false
  }

  /**
   * The changes are stored as `data`: later in-place changes and conflicts are measured
   * against it.
   */
  committed (data: Record<string, unknown>): void {
    this.#cleared = false
    this.#writes = undefined
    for (const key of this.#reads?.keys() ?? []) this.#reads?.set(key, jsonOf(data, key))
  }

  /**
   * Undoes the in-place changes to values read since the last reset: `before` is a shallow
   * copy of the data taken then, whose objects may have been changed through `get()`.
   */
  undoMutations (before: Record<string, unknown>): Record<string, unknown> {
    for (const [key, json] of this.#reads ?? []) {
      const value = before[key]
      if (json === ABSENT || value === null || typeof value !== 'object' || !Object.hasOwn(before, key)) continue
      if (toJson(key, value) !== json) put(before, key, parseJson(json))
    }
    return before
  }

  /** A key this request read and changed that `latest` holds with another value. */
  conflict (latest: Record<string, unknown>): string | undefined {
    for (const [key, before] of this.#reads ?? []) {
      if (this.touches(key) && jsonOf(latest, key) !== before) return key
    }
    return undefined
  }

  /** Replays the writes onto `base` (mutated and returned). */
  applyTo (base: Record<string, unknown>): Record<string, unknown> {
    const data = this.#cleared ? {} : base
    for (const [key, value] of this.#writes ?? []) {
      if (value === DELETED) delete data[key]
      else put(data, key, value)
    }
    return data
  }
}

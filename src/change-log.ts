import { isFlatJson, parseJson, toJson } from './json'

const DELETED = Symbol('deleted')
// What a read of a missing key is recorded as.
const ABSENT = Symbol('absent')

type Flat = unknown[] | Record<string, unknown>

// A flat array or plain object holds primitives only (see isFlatJson): a shallow copy is
// all of it, and comparing entries says what comparing JSON would, without writing any.
function copyFlat (value: Flat): Flat {
  return Array.isArray(value) ? value.slice() : { ...value }
}

function sameFlat (before: Flat, value: object): boolean {
  if (Array.isArray(before)) {
    if (!Array.isArray(value) || value.length !== before.length) return false
    for (let i = 0; i < before.length; i++) if (value[i] !== before[i]) return false
    return true
  }
  if (Array.isArray(value) || !isFlatJson(value)) return false
  const keys = Object.keys(value)
  const expected = Object.keys(before)
  if (keys.length !== expected.length) return false
  for (let i = 0; i < keys.length; i++) {
    if (keys[i] !== expected[i] || (value as Record<string, unknown>)[keys[i]] !== before[keys[i]]) return false
  }
  return true
}

/**
 * How an object read looked then, since it can change in place: a copy of it when it is
 * flat, its JSON otherwise.
 */
class Snapshot {
  readonly #json: string | undefined
  readonly #flat: Flat | undefined

  constructor (key: string, value: object) {
    if (isFlatJson(value)) this.#flat = copyFlat(value as Flat)
    else this.#json = toJson(key, value)
  }

  /** Whether `value` still has the JSON it had then. */
  matches (key: string, value: unknown): boolean {
    // A Date reads back as the string it was written as: any value may equal a JSON.
    if (this.#flat === undefined) return toJson(key, value) === this.#json
    return value !== null && typeof value === 'object' && sameFlat(this.#flat, value)
  }

  /** A new copy of the value as it was then. */
  restore (): unknown {
    return this.#flat === undefined ? parseJson(this.#json as string) : copyFlat(this.#flat)
  }
}

/**
 * What a key holds now, as a read records it: a primitive as itself (it cannot change in
 * place, and comparing it costs nothing), an object as a Snapshot. A number JSON cannot hold
 * reads back as null, and is recorded so.
 */
type Before = string | number | boolean | null | typeof ABSENT | Snapshot

function snapshot (data: Record<string, unknown>, key: string): Before {
  if (!Object.hasOwn(data, key)) return ABSENT
  const value = data[key]
  if (value === null || typeof value !== 'object') return typeof value === 'number' && !Number.isFinite(value) ? null : value as Before
  return new Snapshot(key, value)
}

// Whether `data` holds `key` as `before` recorded it.
function unchanged (data: Record<string, unknown>, key: string, before: Before): boolean {
  if (!(before instanceof Snapshot)) return snapshot(data, key) === before
  return Object.hasOwn(data, key) && before.matches(key, data[key])
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
  #reads: Map<string, Before> | undefined
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
    const before = snapshot(data, key)
    this.#reads.set(key, before)
    if (before instanceof Snapshot) this.#readObjects = true
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
      if (!(before instanceof Snapshot) || this.touches(key) || !Object.hasOwn(data, key)) continue
      const value = data[key]
      if (value !== null && typeof value === 'object' && !before.matches(key, value)) this.set(key, value)
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
    this.#readObjects = false
    for (const key of this.#reads?.keys() ?? []) {
      const before = snapshot(data, key)
      this.#reads?.set(key, before)
      if (before instanceof Snapshot) this.#readObjects = true
    }
  }

  /**
   * Undoes the in-place changes to values read since the last reset: `before` is a shallow
   * copy of the data taken then, whose objects may have been changed through `get()`.
   */
  undoMutations (before: Record<string, unknown>): Record<string, unknown> {
    for (const [key, read] of this.#reads ?? []) {
      if (!(read instanceof Snapshot) || !Object.hasOwn(before, key)) continue
      const value = before[key]
      if (value !== null && typeof value === 'object' && !read.matches(key, value)) put(before, key, read.restore())
    }
    return before
  }

  /** A key this request read and changed that `latest` holds with another value. */
  conflict (latest: Record<string, unknown>): string | undefined {
    for (const [key, before] of this.#reads ?? []) {
      if (this.touches(key) && !unchanged(latest, key, before)) return key
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

import { parseJson } from '../json'
import type { SessionRecord, SessionStore } from '../store'
import { integer, knownKeys, plainObject, seconds } from '../validate'

export interface MemoryStoreOptions {
  /** Most records kept; the least recently used goes first. Default 100000. */
  max?: number
  /** Seconds between sweeps of expired records. Default 60. */
  sweepInterval?: number
}

interface Entry {
  json: string
  version: number
  createdAt: number
  expiresAt: number
}

/**
 * A bounded in-process store for development, tests and single-process apps.
 * Records are kept as JSON text so no request shares objects with another.
 */
export class MemoryStore implements SessionStore {
  #entries = new Map<string, Entry>()
  #max: number
  #timer: NodeJS.Timeout

  constructor (options: MemoryStoreOptions = {}) {
    const given = plainObject('MemoryStore options', options)
    knownKeys('MemoryStore ', given, ['max', 'sweepInterval'])
    this.#max = integer('MemoryStore max', given.max, 100_000, 1, Number.MAX_SAFE_INTEGER)
    const sweep = seconds('MemoryStore sweepInterval', given.sweepInterval, 60)
    this.#timer = setInterval(() => this.#sweep(), sweep * 1000).unref()
  }

  /** Number of live and not yet swept records. */
  get size (): number {
    return this.#entries.size
  }

  async get (key: string): Promise<SessionRecord | undefined> {
    const entry = this.#live(key)
    if (entry === undefined) return undefined
    // Re-inserting marks the entry as most recently used.
    this.#entries.delete(key)
    this.#entries.set(key, entry)
    const { json, version, createdAt, expiresAt } = entry
    return { data: parseJson(json) as Record<string, unknown>, version, createdAt, expiresAt }
  }

  async set (key: string, record: SessionRecord, expectedVersion: number): Promise<boolean> {
    const json = JSON.stringify(record.data)
    if ((this.#live(key)?.version ?? 0) !== expectedVersion) return false
    this.#entries.delete(key)
    this.#entries.set(key, { json, version: record.version, createdAt: record.createdAt, expiresAt: record.expiresAt })
    if (this.#entries.size > this.#max) this.#evictOldest()
    return true
  }

  async destroy (key: string): Promise<void> {
    this.#entries.delete(key)
  }

  async touch (key: string, expiresAt: number): Promise<boolean> {
    const entry = this.#live(key)
    if (entry === undefined) return false
    entry.expiresAt = expiresAt
    return true
  }

  async close (): Promise<void> {
    clearInterval(this.#timer)
    this.#entries.clear()
  }

  #live (key: string): Entry | undefined {
    const entry = this.#entries.get(key)
    if (entry !== undefined && entry.expiresAt <= Date.now()) {
      this.#entries.delete(key)
      return undefined
    }
    return entry
  }

  // A Map deleted from at the front keeps holes there until it is rebuilt, and every walk
  // from the start steps over them: evicting one record per write cost tens of microseconds
  // per login once the store was full (measured). Evicting the oldest 1% at a time pays
  // that walk once per many writes.
  #evictOldest (): void {
    let excess = this.#entries.size - this.#max + Math.floor(this.#max / 100)
    for (const key of this.#entries.keys()) {
      if (excess-- <= 0) break
      this.#entries.delete(key)
    }
  }

  #sweep (): void {
    const now = Date.now()
    for (const [key, entry] of this.#entries) {
      if (entry.expiresAt <= now) this.#entries.delete(key)
    }
  }
}

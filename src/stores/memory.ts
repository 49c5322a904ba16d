import { parseJson } from '../json'
import type { SessionRecord, SessionStore, UserSession } from '../store'
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
  user: string | undefined
}

/**
 * A bounded in-process store for development, tests and single-process apps.
 * Records are kept as JSON text so no request shares objects with another.
 */
export class MemoryStore implements SessionStore {
  #entries = new Map<string, Entry>()
  // The per-user index: the keys of each user's records, kept in step with #entries.
  #users = new Map<string, Set<string>>()
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
    return recordOf(entry)
  }

  async set (key: string, record: SessionRecord, expectedVersion: number): Promise<boolean> {
    const json = JSON.stringify(record.data)
    if ((this.#live(key)?.version ?? 0) !== expectedVersion) return false
    this.#remove(key)
    const { version, createdAt, expiresAt, user } = record
    this.#entries.set(key, { json, version, createdAt, expiresAt, user })
    if (user !== undefined) this.#file(user, key)
    if (this.#entries.size > this.#max) this.#evictOldest()
    return true
  }

  async destroy (key: string): Promise<void> {
    this.#remove(key)
  }

  async listUser (user: string): Promise<UserSession[]> {
    const listed: UserSession[] = []
    for (const key of this.#users.get(user) ?? []) {
      const entry = this.#live(key)
      if (entry !== undefined) listed.push({ key, record: recordOf(entry) })
    }
    return listed
  }

  async destroyUser (user: string): Promise<number> {
    let ended = 0
    for (const key of this.#users.get(user) ?? []) {
      if (this.#live(key) !== undefined) ended++
      this.#remove(key)
    }
    return ended
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
    this.#users.clear()
  }

  #live (key: string): Entry | undefined {
    const entry = this.#entries.get(key)
    if (entry !== undefined && entry.expiresAt <= Date.now()) {
      this.#remove(key)
      return undefined
    }
    return entry
  }

  #file (user: string, key: string): void {
    const keys = this.#users.get(user)
    if (keys === undefined) this.#users.set(user, new Set([key]))
    else keys.add(key)
  }

  // Every removal comes through here, so the index never names a record that is gone.
  #remove (key: string): void {
    const user = this.#entries.get(key)?.user
    this.#entries.delete(key)
    if (user === undefined) return
    const keys = this.#users.get(user) as Set<string>
    keys.delete(key)
    if (keys.size === 0) this.#users.delete(user)
  }

  // A Map deleted from at the front keeps holes there until it is rebuilt, and every walk
  // from the start steps over them: evicting one record per write cost tens of microseconds
  // per login once the store was full (measured). Evicting the oldest 1% at a time pays
  // that walk once per many writes.
  #evictOldest (): void {
    let excess = this.#entries.size - this.#max + Math.floor(this.#max / 100)
    for (const key of this.#entries.keys()) {
      if (excess-- <= 0) break
      this.#remove(key)
    }
  }

  #sweep (): void {
    const now = Date.now()
    for (const [key, entry] of this.#entries) {
      if (entry.expiresAt <= now) this.#remove(key)
    }
  }
}

function recordOf ({ json, version, createdAt, expiresAt, user }: Entry): SessionRecord {
  const record: SessionRecord = { data: parseJson(json) as Record<string, unknown>, version, createdAt, expiresAt }
  if (user !== undefined) record.user = user
  return record
}

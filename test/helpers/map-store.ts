import type { SessionRecord, SessionStore, UserSession } from '../../src/store'

/**
 * The smallest store that keeps the whole contract of src/store.ts, per-user index included:
 * the reference the conformance suite must pass, and the base the broken stores of
 * test/testing/ change one rule of. Copies in and out, so no caller shares its objects.
 */
export class MapStore implements SessionStore {
  protected readonly records = new Map<string, SessionRecord>()

  async get (key: string): Promise<SessionRecord | undefined> {
    const found = this.live(key)
    return found && structuredClone(found)
  }

  async set (key: string, record: SessionRecord, expectedVersion: number): Promise<boolean> {
    if ((this.live(key)?.version ?? 0) !== expectedVersion) return false
    this.records.set(key, structuredClone(record))
    return true
  }

  async destroy (key: string): Promise<void> {
    this.records.delete(key)
  }

  async touch (key: string, expiresAt: number): Promise<boolean> {
    const found = this.live(key)
    if (found !== undefined) found.expiresAt = expiresAt
    return found !== undefined
  }

  async listUser (user: string): Promise<UserSession[]> {
    return this.liveOf(user).map((key) => ({ key, record: structuredClone(this.records.get(key) as SessionRecord) }))
  }

  async destroyUser (user: string): Promise<number> {
    const live = this.liveOf(user)
    for (const [key, found] of this.records) if (found.user === user) this.records.delete(key)
    return live.length
  }

  /** The stored record itself when it is live; an expired one is dropped. */
  protected live (key: string): SessionRecord | undefined {
    const found = this.records.get(key)
    if (found === undefined || found.expiresAt > Date.now()) return found
    this.records.delete(key)
    return undefined
  }

  protected liveOf (user: string): string[] {
    return [...this.records.keys()].filter((key) => this.records.get(key)?.user === user && this.live(key) !== undefined)
  }
}

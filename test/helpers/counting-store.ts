import { MemoryStore } from '../../src/index'
import type { SessionRecord, SessionStore } from '../../src/store'

/** A MemoryStore that counts calls, to prove which requests do store I/O. */
export class CountingStore implements SessionStore {
  inner = new MemoryStore()
  calls = { get: 0, set: 0, destroy: 0, touch: 0 }
  keys: string[] = []

  get total (): number {
    return this.calls.get + this.calls.set + this.calls.destroy + this.calls.touch
  }

  reset (): void {
    this.calls = { get: 0, set: 0, destroy: 0, touch: 0 }
  }

  async get (key: string): Promise<SessionRecord | undefined> {
    this.calls.get++
    return this.inner.get(key)
  }

  async set (key: string, record: SessionRecord, expected: number): Promise<boolean> {
    this.calls.set++
    this.keys.push(key)
    return this.inner.set(key, record, expected)
  }

  async destroy (key: string): Promise<void> {
    this.calls.destroy++
    return this.inner.destroy(key)
  }

  // Answers whatever the MemoryStore answers (whether the record was there), typed to match it.
  async touch (key: string, expiresAt: number): ReturnType<MemoryStore['touch']> {
    this.calls.touch++
    return this.inner.touch(key, expiresAt)
  }

  async close (): Promise<void> {
    return this.inner.close()
  }
}

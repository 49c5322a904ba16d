const DELETED = Symbol('deleted')

/**
 * What one request did to a session's data, kept so that a commit that lost a
 * compare-and-set can be replayed, key by key, onto the newer stored copy.
 */
export class ChangeLog {
  #cleared = false
  // Created on the first write: most requests only read.
  #writes: Map<string, unknown> | undefined

  get empty (): boolean {
    return !this.#cleared && (this.#writes === undefined || this.#writes.size === 0)
  }

  touches (key: string): boolean {
    return this.#cleared || this.#writes?.has(key) === true
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

  reset (): void {
    this.#cleared = false
    this.#writes = undefined
  }

  /** Replays the log onto `base` (mutated and returned). */
  applyTo (base: Record<string, unknown>): Record<string, unknown> {
    const data = this.#cleared ? {} : base
    for (const [key, value] of this.#writes ?? []) {
      if (value === DELETED) delete data[key]
      else data[key] = value
    }
    return data
  }
}

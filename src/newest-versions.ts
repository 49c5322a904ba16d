/** Keys a `NewestVersions` remembers at most, least recently seen dropped first. */
export const NEWEST_VERSION_KEYS = 1024

/**
 * The newest version of each recent key this process read or wrote. A hint, never an
 * answer: versions only grow, so a compare-and-set expecting an older one is bound to
 * fail, and can be answered so without asking the store. (A key that is destroyed is never
 * written again: ids are not reused.)
 */
export class NewestVersions {
  #versions = new Map<string, number>()
  #max: number

  constructor (max = NEWEST_VERSION_KEYS) {
    this.#max = max
  }

  get (key: string): number | undefined {
    return this.#versions.get(key)
  }

  /** Whether `version` is older than one seen: a compare-and-set expecting it cannot succeed. */
  outdated (key: string, version: number): boolean {
    const newest = this.#versions.get(key)
    return newest !== undefined && newest > version
  }

  /** Records `version` of `key`, unless a newer one was seen (a read can end after a later write). */
  saw (key: string, version: number): void {
    const newest = this.#versions.get(key)
    if (newest !== undefined && newest > version) return
    this.#versions.delete(key)
    this.#versions.set(key, version)
    if (this.#versions.size > this.#max) this.#versions.delete(this.#versions.keys().next().value as string)
  }

  forget (key: string): void {
    this.#versions.delete(key)
  }
}

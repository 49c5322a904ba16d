/** Keys a `NewestVersions` remembers at most, least recently seen dropped first. */
export const NEWEST_VERSION_KEYS = 1024

/**
 * The version of each recent key this process last read or wrote. A hint, never an answer:
 * versions grow, so a compare-and-set expecting an older one is most likely bound to fail,
 * and the plugin answers it so without asking the store, then reads the stored copy. Each
 * read resets the hint to what the store holds, lower or not: a store can go back (a
 * failover that lost the last writes, a restored backup), and a hint that stayed above it
 * would refuse every write of the session. A hint below the truth only costs a
 * compare-and-set that fails. (A key that is destroyed is never written again: ids are not
 * reused.)
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

  /** Records `version` of `key`, as the store just gave or took it. */
  saw (key: string, version: number): void {
    this.#versions.delete(key)
    this.#versions.set(key, version)
    if (this.#versions.size > this.#max) this.#versions.delete(this.#versions.keys().next().value as string)
  }

  forget (key: string): void {
    this.#versions.delete(key)
  }
}

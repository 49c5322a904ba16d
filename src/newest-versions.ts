/** Keys a `NewestVersions` remembers: at most this many plus one, and always the half plus one seen last. */
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
  // Two generations: a key is written to the newer one only, and when that holds more than
  // half the keys allowed, the older one is dropped whole. One Map write per sighting, where
  // keeping one Map in order of use took a delete and a set, on every read and write.
  #recent = new Map<string, number>()
  #older = new Map<string, number>()
  #half: number

  constructor (max = NEWEST_VERSION_KEYS) {
    this.#half = Math.max(1, Math.floor(max / 2))
  }

  get (key: string): number | undefined {
    return this.#recent.get(key) ?? this.#older.get(key)
  }

  /** Whether `version` is older than one seen: a compare-and-set expecting it cannot succeed. */
  outdated (key: string, version: number): boolean {
    const newest = this.get(key)
    return newest !== undefined && newest > version
  }

  /** Records `version` of `key`, as the store just gave or took it. */
  saw (key: string, version: number): void {
    this.#recent.set(key, version)
    if (this.#recent.size <= this.#half) return
    this.#older = this.#recent
    this.#recent = new Map()
  }

  forget (key: string): void {
    this.#recent.delete(key)
    this.#older.delete(key)
  }
}

/**
 * Cookies one registration verified, opened or issued lately, with what they stand for.
 * A browser sends the same cookie on every request until it changes, so an active
 * session's cookie costs one HMAC check or one AES-GCM opening, not one per request.
 * Only authentic cookies get in, so a flood of forged ones cannot fill it.
 *
 * Two generations bound it: new entries go to the young one; when that holds half the
 * budget it becomes the old one and the previous old one is dropped whole. Entries used
 * in the meantime move to the young generation. No per-entry bookkeeping on the hot path.
 */
/**
 * Characters of cookies (and what they stand for) one registration keeps: about 16,000
 * signed cookies, or 500 sealed cookies of the largest size.
 */
export const RECENT_COOKIE_CHARS = 4 * 1024 * 1024

interface Entry<T> {
  value: T
  size: number
}

export class RecentCookies<T> {
  #young = new Map<string, Entry<T>>()
  #old = new Map<string, Entry<T>>()
  #youngSize = 0
  #half: number
  #sizeOf: (value: T) => number

  /**
   * `budget`: characters held at most, counting each cookie and `sizeOf` its value
   * (what the value holds besides the cookie itself).
   */
  constructor (budget: number, sizeOf: (value: T) => number) {
    this.#half = budget / 2
    this.#sizeOf = sizeOf
  }

  get size (): number {
    return this.#young.size + this.#old.size
  }

  get (cookie: string): T | undefined {
    const young = this.#young.get(cookie)
    if (young !== undefined) return young.value
    const old = this.#old.get(cookie)
    if (old === undefined) return undefined
    this.#old.delete(cookie)
    this.#put(cookie, old)
    return old.value
  }

  add (cookie: string, value: T): void {
    const size = cookie.length + this.#sizeOf(value)
    if (size > this.#half || this.#young.has(cookie)) return
    this.#put(cookie, { value, size })
  }

  #put (cookie: string, entry: Entry<T>): void {
    if (this.#youngSize + entry.size > this.#half) {
      this.#old = this.#young
      this.#young = new Map()
      this.#youngSize = 0
    }
    this.#young.set(cookie, entry)
    this.#youngSize += entry.size
  }
}

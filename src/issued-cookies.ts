/** Cookies an `IssuedCookies` keeps at most. */
export const ISSUED_COOKIES = 8192
/** Bytes of payload an `IssuedCookies` keeps at most. */
export const ISSUED_BYTES = 1024 * 1024

/**
 * The plaintexts of the sealed cookies one registration issued lately. A browser sends a
 * cookie it was just given on its next request; found here, that cookie costs no AES-GCM
 * opening (a node:crypto cipher object and its native handle per cookie).
 *
 * Most issued cookies never come back (the session's next write replaces them), so keeping
 * one must cost next to nothing: the payloads are copied into one ring of bytes allocated
 * once, and the cookies into a ring of slots, oldest first. Adding one allocates no object
 * of its own (only the Map's entry), and the oldest make room for the newest.
 */
export class IssuedCookies {
  #slots: Array<string | undefined>
  #starts: Int32Array
  #ends: Int32Array
  #index = new Map<string, number>()
  #bytes: Buffer | undefined
  #capacity: number
  #oldest = 0
  #count = 0
  // Where the next payload's bytes go.
  #at = 0

  constructor (slots = ISSUED_COOKIES, bytes = ISSUED_BYTES) {
    this.#slots = new Array<string | undefined>(slots).fill(undefined)
    this.#starts = new Int32Array(slots)
    this.#ends = new Int32Array(slots)
    this.#capacity = bytes
  }

  get size (): number {
    return this.#count
  }

  /** A copy of the payload `cookie` was sealed from, or undefined when it is not kept. */
  get (cookie: string): Buffer | undefined {
    const slot = this.#index.get(cookie)
    if (slot === undefined) return undefined
    // A copy: the ring's bytes are overwritten while the request may still read them.
    return Buffer.from((this.#bytes as Buffer).subarray(this.#starts[slot], this.#ends[slot]))
  }

  add (cookie: string, payload: Uint8Array): void {
    const length = payload.byteLength
    // One payload may take at most a quarter of the ring: a few large ones must not evict all.
    // A cookie is never issued twice (each seal draws a fresh nonce), so it is not looked up.
    if (length * 4 > this.#capacity) return
    this.#bytes ??= Buffer.allocUnsafeSlow(this.#capacity)
    const start = this.#room(length)
    const slot = (this.#oldest + this.#count) % this.#slots.length
    this.#bytes.set(payload, start)
    this.#slots[slot] = cookie
    this.#starts[slot] = start
    this.#ends[slot] = start + length
    this.#index.set(cookie, slot)
    this.#count++
    this.#at = start + length
  }

  // Where `length` bytes fit after the newest payload, dropping the oldest cookies until
  // they do (and until a slot is free).
  #room (length: number): number {
    for (;;) {
      if (this.#count === 0) return 0
      const start = this.#starts[this.#oldest]
      const at = this.#at
      if (this.#count < this.#slots.length) {
        // The payloads kept run from `start` to `at`, wrapping round the end when start >= at.
        if (start < at && at + length <= this.#capacity) return at
        if (start < at && length <= start) return 0
        if (start >= at && at + length <= start) return at
      }
      this.#dropOldest()
    }
  }

  #dropOldest (): void {
    const slot = this.#oldest
    // A cookie added twice all the same is forgotten with its older slot: a miss, no harm.
    this.#index.delete(this.#slots[slot] as string)
    this.#slots[slot] = undefined
    this.#oldest = (slot + 1) % this.#slots.length
    this.#count--
  }
}

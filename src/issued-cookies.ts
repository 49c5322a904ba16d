/** Cookies an `IssuedCookies` keeps at most. */
export const ISSUED_COOKIES = 8192
/** Bytes of cookies and payloads an `IssuedCookies` keeps at most. */
export const ISSUED_BYTES = 2 * 1024 * 1024

// Where a cookie's slot is found: a bucket per two slots, picked by a hash of the cookie's
// last characters (the GCM tag's, random); a bucket holds slot + 1, 0 for none.
export function bucketOf (cookie: string, mask: number): number {
  let key = 0
  for (let i = Math.max(0, cookie.length - 8); i < cookie.length; i++) key = Math.imul(key ^ cookie.charCodeAt(i), 0x9e3779b1)
  return ((key >>> 16) ^ key) & mask
}

/** A cookie found among those issued: a copy of its payload, and how many times it came back. */
export interface IssuedCookie {
  payload: Buffer
  returns: number
}

/**
 * The plaintexts of the sealed cookies one registration issued lately. A browser sends a
 * cookie it was just given on its next request; found here, that cookie costs no AES-GCM
 * opening (a node:crypto cipher object and its native handle per cookie).
 *
 * Most issued cookies never come back (the session's next write replaces them), so keeping
 * one must cost next to nothing, for the garbage collector too: each cookie's characters
 * and its payload are copied into one ring of bytes allocated once, oldest first, and found
 * through a table of integers. No string is kept or hashed, no object allocated per cookie.
 * Two cookies that meet in a bucket: the newer one wins, the older one is a miss (one
 * opening), never a wrong answer, since a hit compares the whole cookie.
 */
export class IssuedCookies {
  #buckets: Int32Array
  // Per slot: where its cookie starts, where its payload starts and ends in #bytes, its bucket.
  #starts: Int32Array
  #payloads: Int32Array
  #ends: Int32Array
  #bucketOf: Int32Array
  // Per slot: how many times its cookie came back.
  #returns: Int32Array
  #bytes: Buffer | undefined
  #capacity: number
  #oldest = 0
  #count = 0
  // Where the next cookie's bytes go.
  #at = 0

  constructor (slots = ISSUED_COOKIES, bytes = ISSUED_BYTES) {
    // A power of two, at least twice the slots, so that few cookies meet in a bucket.
    this.#buckets = new Int32Array(2 ** Math.ceil(Math.log2(slots * 2)))
    this.#starts = new Int32Array(slots)
    this.#payloads = new Int32Array(slots)
    this.#ends = new Int32Array(slots)
    this.#bucketOf = new Int32Array(slots)
    this.#returns = new Int32Array(slots)
    this.#capacity = bytes
  }

  get size (): number {
    return this.#count
  }

  /**
   * A copy of the payload `cookie` was sealed from, with how many times it came back (this
   * time included), or undefined when it is not kept.
   */
  get (cookie: string): IssuedCookie | undefined {
    const slot = this.#find(cookie)
    if (slot < 0) return undefined
    const bytes = this.#bytes as Buffer
    const payload = this.#payloads[slot]
    // A copy: the ring's bytes are overwritten while the request may still read them.
    const copy = Buffer.allocUnsafe(this.#ends[slot] - payload)
    bytes.copy(copy, 0, payload, this.#ends[slot])
    return { payload: copy, returns: ++this.#returns[slot] }
  }

  /** Stops answering for `cookie` (its bytes stay until their turn to go). */
  forget (cookie: string): void {
    const slot = this.#find(cookie)
    if (slot >= 0) this.#buckets[this.#bucketOf[slot]] = 0
  }

  // The slot of `cookie`, or -1.
  #find (cookie: string): number {
    const slot = this.#buckets[bucketOf(cookie, this.#buckets.length - 1)] - 1
    if (slot < 0) return -1
    const start = this.#starts[slot]
    const payload = this.#payloads[slot]
    const same = payload - start === cookie.length && (this.#bytes as Buffer).toString('latin1', start, payload) === cookie
    return same ? slot : -1
  }

  /** Keeps `payload` as what `cookie` (base64url, so one byte a character) was sealed from. */
  add (cookie: string, payload: Uint8Array): void {
    const length = cookie.length + payload.byteLength
    // One cookie may take at most a quarter of the ring: a few large ones must not evict all.
    // A cookie is never issued twice (each seal draws a fresh nonce), so it is not looked up.
    if (length * 4 > this.#capacity) return
    this.#bytes ??= Buffer.allocUnsafeSlow(this.#capacity)
    const start = this.#room(length)
    const slot = (this.#oldest + this.#count) % this.#starts.length
    this.#bytes.write(cookie, start, 'latin1')
    this.#bytes.set(payload, start + cookie.length)
    const bucket = bucketOf(cookie, this.#buckets.length - 1)
    this.#starts[slot] = start
    this.#payloads[slot] = start + cookie.length
    this.#ends[slot] = start + length
    this.#bucketOf[slot] = bucket
    this.#returns[slot] = 0
    this.#buckets[bucket] = slot + 1
    this.#count++
    this.#at = start + length
  }

  // Where `length` bytes fit after the newest cookie, dropping the oldest until they do
  // (and until a slot is free).
  #room (length: number): number {
    for (;;) {
      if (this.#count === 0) return 0
      const start = this.#starts[this.#oldest]
      const at = this.#at
      if (this.#count < this.#starts.length) {
        // The bytes kept run from `start` to `at`, wrapping round the end when start >= at.
        if (start < at && at + length <= this.#capacity) return at
        if (start < at && length <= start) return 0
        if (start >= at && at + length <= start) return at
      }
      this.#dropOldest()
    }
  }

  #dropOldest (): void {
    const slot = this.#oldest
    // Its bucket, unless a newer cookie has taken it since.
    const bucket = this.#bucketOf[slot]
    if (this.#buckets[bucket] === slot + 1) this.#buckets[bucket] = 0
    this.#oldest = (slot + 1) % this.#starts.length
    this.#count--
  }
}

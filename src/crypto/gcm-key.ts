import { createCipheriv, createDecipheriv, createSecretKey, randomBytes, randomFillSync, type Cipher, type KeyObject } from 'node:crypto'
import { AAD_STATE, gcmCode, LONG_STREAM, MAX_BYTES, OUT, STREAM_SLOT, STREAM_SLOTS, STREAMS, TABLE, type GcmCode } from './gcm-code'

const BLOCK = 16
export const GCM_NONCE_BYTES = 12
export const GCM_TAG_BYTES = 16
// A full-length tag, required on opening: a shortened one would be easier to forge.
const TAG_LENGTH = { authTagLength: GCM_TAG_BYTES }
// Seals draw nonces from a batch made ahead, each with its tag mask and the keystream for
// its first 256 bytes: one AES call and one call to the random generator per 64 seals
// (each call costs about as much as the rest of a small seal). Every nonce is 96 fresh
// random bits, handed out once; a longer value gets the rest of its keystream on demand.
const BATCH_NONCES = STREAM_SLOTS
const BATCH_BLOCKS = STREAM_SLOT / BLOCK
/** The longest header `seal()` writes before the nonce. */
export const MAX_PREFIX = 16
// Where seal() puts the nonce and the plaintext in the heap, after the header.
const NONCE = OUT + MAX_PREFIX
const DATA = NONCE + GCM_NONCE_BYTES
// Multiplication by H, 4 bits of the multiplier at a time: 32 nibble positions, 16 values
// each, a 128-bit product (4 words) per entry. 8 KB per key.
const POSITIONS = 32
const TABLE_WORDS = POSITIONS * 16 * 4
// x^128 + x^7 + x^2 + x + 1 in GCM's bit order: what a carry out of the last bit XORs in.
const REDUCTION = 0xe1000000

/** The multiples of H that GHASH adds together: entry (p, n) = n·H·x^(4p), by Algorithm 1 of NIST SP 800-38D. */
function multiplesOf (h: Uint8Array): Int32Array {
  const powers = new Int32Array(128 * 4)
  let v0 = readWord(h, 0)
  let v1 = readWord(h, 4)
  let v2 = readWord(h, 8)
  let v3 = readWord(h, 12)
  for (let bit = 0; bit < 128; bit++) {
    powers.set([v0, v1, v2, v3], bit * 4)
    const carry = v3 & 1
    v3 = (v3 >>> 1) | (v2 << 31)
    v2 = (v2 >>> 1) | (v1 << 31)
    v1 = (v1 >>> 1) | (v0 << 31)
    v0 = (v0 >>> 1) ^ (REDUCTION & -carry)
  }
  const table = new Int32Array(TABLE_WORDS)
  for (let position = 0; position < POSITIONS; position++) {
    for (let nibble = 0; nibble < 16; nibble++) {
      const entry = (position * 16 + nibble) * 4
      for (let bit = 0; bit < 4; bit++) {
        if ((nibble & (8 >> bit)) === 0) continue
        const power = (position * 4 + bit) * 4
        for (let word = 0; word < 4; word++) table[entry + word] ^= powers[power + word]
      }
    }
  }
  return table
}

function readWord (bytes: Uint8Array, at: number): number {
  return (bytes[at] << 24) | (bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3]
}

/**
 * AES-256-GCM (NIST SP 800-38D, 96-bit nonces, 128-bit tags) for one key, byte for byte
 * what node:crypto's 'aes-256-gcm' produces, without an OpenSSL cipher object per value.
 *
 * Why: creating that object, setting its data and reading its tag take six native calls
 * and leave a native handle to the garbage collector, most of a small seal's cost. Here AES
 * runs as the bare block function (an ECB object with no padding, created once per key and
 * fed counter blocks, which is what GCM's counter mode does inside), and the XOR with the
 * keystream and GHASH run in WebAssembly (gcm-code.ts) on a table of multiples of H made
 * once per key, when it first seals. Everything is synchronous, so the instance's memory is
 * never seen half-written. Only sealing takes this path: its GHASH input is ciphertext of
 * its own making under a fresh random nonce. Opening, whose input a client chooses, uses
 * node:crypto's cipher (see open()), and so do values longer than MAX_BYTES, where the
 * cipher object's cost no longer matters, and every seal where WebAssembly is missing.
 */
export class GcmKey {
  readonly #aes: Cipher
  // A KeyObject spares OpenSSL a key import on every opening.
  readonly #secret: KeyObject
  readonly #makeCode: () => GcmCode | undefined
  // null until the first seal.
  #code: GcmCode | undefined | null = null
  // A batch's nonces as 32-bit words, and its counter blocks (nonce || counter) as words: the
  // counters are written once, here, and a batch only copies each nonce's three words into its
  // blocks (byte by byte, that copy cost a seal more than GHASH did; measured by callgrind).
  // Words are copied between views of the same byte order, so the bytes stay as drawn.
  readonly #nonceWords = new Int32Array(BATCH_NONCES * GCM_NONCE_BYTES / 4)
  readonly #nonces = Buffer.from(this.#nonceWords.buffer)
  readonly #counters = batchCounters()
  readonly #counterBytes = Buffer.from(this.#counters.buffer)
  #next = BATCH_NONCES
  // The last authenticated data, which nearly every seal repeats (the format, key id and
  // cookie name): it is public, so its GHASH (at AAD_STATE) is kept rather than made again.
  #aad: Buffer | undefined

  /** `code` makes the WebAssembly instance; tests pass one that has none. */
  constructor (key: Uint8Array, code = gcmCode) {
    this.#secret = createSecretKey(key)
    this.#aes = createCipheriv('aes-256-ecb', key, null)
    this.#aes.setAutoPadding(false)
    this.#makeCode = code
  }

  /**
   * base64url of `prefix` (at most MAX_PREFIX bytes, written as given: the caller makes it
   * part of `aad`), a fresh nonce, the ciphertext of `plaintext` and the tag over `aad`.
   */
  seal (prefix: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): string {
    const code = this.#code === null ? this.#instance() : this.#code
    const length = plaintext.length
    if (code === undefined || length > MAX_BYTES || aad.length > MAX_BYTES || prefix.length > MAX_PREFIX) {
      return this.#sealWithOpenSsl(prefix, aad, plaintext)
    }
    const heap = code.heap
    if (this.#next === BATCH_NONCES) this.#refill(code)
    const slot = this.#next++
    const start = NONCE - prefix.length
    for (let i = 0; i < prefix.length; i++) heap[start + i] = prefix[i]
    for (let i = 0; i < GCM_NONCE_BYTES; i++) heap[NONCE + i] = this.#nonces[slot * GCM_NONCE_BYTES + i]
    // Before the plaintext: the authenticated data is hashed where the plaintext goes.
    if (this.#aad === undefined || !this.#aad.equals(aad)) this.#hashAad(code, aad)
    heap.set(plaintext, DATA)
    const stream = length <= STREAM_SLOT - BLOCK ? STREAMS + slot * STREAM_SLOT : this.#longStream(code, length)
    code.seal(DATA, length, stream, aad.length * 8)
    return heap.toString('base64url', start, DATA + length + GCM_TAG_BYTES)
  }

  /**
   * The plaintext of `sealed` (ciphertext then tag), or undefined when authentication fails.
   * Opening runs on whatever a client sends, so it goes through OpenSSL, whose GHASH is
   * constant time: the table lookups of GHASH here would let input chosen by an attacker
   * meet the secret H.
   */
  open (nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Buffer | undefined {
    const length = sealed.length - GCM_TAG_BYTES
    if (length < 0) return undefined
    if (nonce.length !== GCM_NONCE_BYTES) throw new TypeError('GcmKey: the nonce must be 12 bytes')
    const decipher = createDecipheriv('aes-256-gcm', this.#secret, nonce, TAG_LENGTH)
    decipher.setAAD(aad)
    decipher.setAuthTag(sealed.subarray(length))
    const plaintext = decipher.update(sealed.subarray(0, length))
    try {
      decipher.final()
      return plaintext
    } catch {
      return undefined
    }
  }

  // The instance and its table of multiples of H = E(0^128), in GCM's byte order.
  #instance (): GcmCode | undefined {
    const code = this.#makeCode()
    if (code !== undefined) {
      const table = multiplesOf(this.#aes.update(Buffer.alloc(BLOCK)))
      for (let word = 0; word < TABLE_WORDS; word++) writeWord(code.heap, TABLE + word * 4, table[word])
    }
    this.#code = code
    return code
  }

  #refill (code: GcmCode): void {
    const nonces = this.#nonceWords
    const counters = this.#counters
    randomFillSync(nonces)
    for (let slot = 0, at = 0; slot < BATCH_NONCES; slot++) {
      const n0 = nonces[slot * 3]
      const n1 = nonces[slot * 3 + 1]
      const n2 = nonces[slot * 3 + 2]
      for (let block = 0; block < BATCH_BLOCKS; block++, at += 4) {
        counters[at] = n0
        counters[at + 1] = n1
        counters[at + 2] = n2
      }
    }
    code.heap.set(this.#aes.update(this.#counterBytes), STREAMS)
    this.#next = 0
  }

  // E(J0), the tag's mask, then the keystream for `length` bytes, for the nonce in the heap.
  #longStream (code: GcmCode, length: number): number {
    const blocks = 1 + Math.ceil(length / BLOCK)
    const counters = Buffer.allocUnsafe(blocks * BLOCK)
    counterBlocks(code.heap.subarray(NONCE, NONCE + GCM_NONCE_BYTES), counters, 0, blocks)
    code.heap.set(this.#aes.update(counters), LONG_STREAM)
    return LONG_STREAM
  }

  #hashAad (code: GcmCode, aad: Uint8Array): void {
    const heap = code.heap
    const padded = Math.ceil(aad.length / BLOCK) * BLOCK
    heap.fill(0, AAD_STATE, AAD_STATE + BLOCK)
    heap.fill(0, DATA, DATA + padded)
    heap.set(aad, DATA)
    code.ghash(AAD_STATE, DATA, DATA + padded)
    this.#aad = Buffer.from(aad)
  }

  #sealWithOpenSsl (prefix: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): string {
    const nonce = randomBytes(GCM_NONCE_BYTES)
    const cipher = createCipheriv('aes-256-gcm', this.#secret, nonce, TAG_LENGTH)
    cipher.setAAD(aad)
    const ciphertext = cipher.update(plaintext)
    cipher.final()
    return Buffer.concat([prefix, nonce, ciphertext, cipher.getAuthTag()]).toString('base64url')
  }
}

// A batch's counter blocks with the nonces left zero, for refills to fill in.
function batchCounters (): Int32Array {
  const counters = new Int32Array(BATCH_NONCES * STREAM_SLOT / 4)
  const bytes = Buffer.from(counters.buffer)
  const unset = new Uint8Array(GCM_NONCE_BYTES)
  for (let slot = 0; slot < BATCH_NONCES; slot++) counterBlocks(unset, bytes, slot * STREAM_SLOT, BATCH_BLOCKS)
  return counters
}

// GCM's counter blocks for one 96-bit nonce: nonce || 1, nonce || 2, … Byte by byte: a
// TypedArray set() and a writeUInt32BE() per block cost more than the loop (measured).
function counterBlocks (nonce: Uint8Array, out: Buffer, at: number, blocks: number): void {
  for (let block = 0, start = at; block < blocks; block++, start += BLOCK) {
    for (let i = 0; i < GCM_NONCE_BYTES; i++) out[start + i] = nonce[i]
    writeWord(out, start + GCM_NONCE_BYTES, block + 1)
  }
}

function writeWord (bytes: Uint8Array, at: number, word: number): void {
  bytes[at] = word >>> 24
  bytes[at + 1] = word >>> 16
  bytes[at + 2] = word >>> 8
  bytes[at + 3] = word
}

import { createCipheriv, createDecipheriv, createSecretKey, randomFillSync, type Cipher, type KeyObject } from 'node:crypto'

const BLOCK = 16
export const GCM_NONCE_BYTES = 12
export const GCM_TAG_BYTES = 16
// A full-length tag, required on opening: a shortened one would be easier to forge.
const TAG_LENGTH = { authTagLength: GCM_TAG_BYTES }
// Seals draw nonces from a batch made ahead, each with its tag mask and the keystream for
// its first 256 bytes: one AES call and one call to the random generator per 64 seals
// (each call costs about as much as the rest of a small seal). Every nonce is 96 fresh
// random bits, handed out once; a longer value gets the rest of its keystream on demand.
const BATCH_NONCES = 64
const BATCH_BLOCKS = 1 + 16
const BATCH_SLOT = BATCH_BLOCKS * BLOCK
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

// A word of a block that may end early: missing bytes count as zero (GHASH pads with zeros).
function paddedWord (bytes: Uint8Array, at: number, end: number): number {
  if (at + 4 <= end) return readWord(bytes, at)
  let word = 0
  for (let i = 0; i < 4; i++) word = (word << 8) | (at + i < end ? bytes[at + i] : 0)
  return word
}

/**
 * AES-256-GCM (NIST SP 800-38D, 96-bit nonces, 128-bit tags) for one key, byte for byte
 * what node:crypto's 'aes-256-gcm' produces, without an OpenSSL cipher object per value.
 *
 * Why: creating that object, setting its data and reading its tag take six native calls
 * and leave a native handle to the garbage collector, most of a small seal's cost. Here AES
 * runs as the bare block function (an ECB object with no padding, created once per key and
 * fed counter blocks, which is what GCM's counter mode does inside), and GHASH runs in
 * JavaScript on a table of multiples of H made once per key. Everything is synchronous, so
 * the reused buffers below are never seen half-written. Only sealing takes this path: its
 * GHASH input is ciphertext of its own making under a fresh random nonce. Opening, whose
 * input a client chooses, uses node:crypto's cipher (see open()).
 */
export class GcmKey {
  readonly #aes: Cipher
  // A KeyObject spares OpenSSL a key import on every opening.
  readonly #secret: KeyObject
  readonly #table: Int32Array
  readonly #state = new Int32Array(4)
  readonly #lengths = Buffer.alloc(BLOCK)
  // A batch's nonces as 32-bit words, and its counter blocks (nonce || counter) as words: the
  // counters are written once, here, and a batch only copies each nonce's three words into its
  // blocks (byte by byte, that copy cost a seal more than GHASH did; measured by callgrind).
  // Words are copied between views of the same byte order, so the bytes stay as drawn.
  readonly #nonceWords = new Int32Array(BATCH_NONCES * GCM_NONCE_BYTES / 4)
  readonly #nonces = Buffer.from(this.#nonceWords.buffer)
  readonly #counters = batchCounters()
  readonly #counterBytes = Buffer.from(this.#counters.buffer)
  #streams = Buffer.alloc(0)
  #next = BATCH_NONCES
  // GHASH over the last authenticated data, which nearly every seal repeats (the format,
  // key id and cookie name): it is public, so its hash is kept rather than made again.
  #aad = Buffer.alloc(0)
  readonly #aadState = new Int32Array(4)

  constructor (key: Uint8Array) {
    this.#secret = createSecretKey(key)
    this.#aes = createCipheriv('aes-256-ecb', key, null)
    this.#aes.setAutoPadding(false)
    this.#table = multiplesOf(this.#aes.update(Buffer.alloc(BLOCK)))
  }

  /**
   * Encrypts `plaintext` with `aad` under a fresh nonce, into `out`: the nonce at `nonceAt`,
   * then the ciphertext and the tag at `at`. `out` may not overlap the other arguments.
   */
  seal (aad: Uint8Array, plaintext: Uint8Array, out: Uint8Array, nonceAt: number, at: number): void {
    if (this.#next === BATCH_NONCES) this.#refill()
    const slot = this.#next++
    const nonces = this.#nonces
    for (let i = 0; i < GCM_NONCE_BYTES; i++) out[nonceAt + i] = nonces[slot * GCM_NONCE_BYTES + i]
    const length = plaintext.length
    const batched = length <= BATCH_SLOT - BLOCK
    const stream = batched ? this.#streams : this.#keystream(out.subarray(nonceAt, nonceAt + GCM_NONCE_BYTES), length)
    const mask = batched ? slot * BATCH_SLOT : 0
    for (let i = 0; i < length; i++) out[at + i] = plaintext[i] ^ stream[mask + BLOCK + i]
    this.#tag(stream, mask, aad, out, at, at + length)
  }

  /**
   * The plaintext of `sealed` (ciphertext then tag), or undefined when authentication fails.
   * Opening runs on whatever a client sends, so it goes through OpenSSL, whose GHASH is
   * constant time: the table lookups of `ghash` below would let input chosen by an attacker
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

  #refill (): void {
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
    this.#streams = this.#aes.update(this.#counterBytes)
    this.#next = 0
  }

  // E(J0), the tag's mask, then the keystream for `length` bytes.
  #keystream (nonce: Uint8Array, length: number): Buffer {
    const blocks = 1 + Math.ceil(length / BLOCK)
    const counters = Buffer.allocUnsafe(blocks * BLOCK)
    counterBlocks(nonce, counters, 0, blocks)
    return this.#aes.update(counters)
  }

  // GHASH over aad, the ciphertext out[start, end) and their bit lengths, masked with E(J0)
  // (stream[mask, mask + 16)); the tag goes right after the ciphertext.
  #tag (stream: Buffer, mask: number, aad: Uint8Array, out: Uint8Array, start: number, end: number): void {
    const state = this.#state
    const lengths = this.#lengths
    if (!this.#aad.equals(aad)) {
      this.#aadState.fill(0)
      ghash(this.#table, this.#aadState, aad, 0, aad.length)
      this.#aad = Buffer.from(aad)
    }
    state.set(this.#aadState)
    ghash(this.#table, state, out, start, end)
    // The lengths in bits, as two 64-bit numbers.
    writeWord(lengths, 0, Math.floor(aad.length / 0x20000000))
    writeWord(lengths, 4, aad.length * 8)
    writeWord(lengths, 8, Math.floor((end - start) / 0x20000000))
    writeWord(lengths, 12, (end - start) * 8)
    ghash(this.#table, state, lengths, 0, BLOCK)
    for (let word = 0; word < 4; word++) writeWord(out, end + word * 4, state[word])
    for (let i = 0; i < GCM_TAG_BYTES; i++) out[end + i] ^= stream[mask + i]
  }
}

// A batch's counter blocks with the nonces left zero, for refills to fill in.
function batchCounters (): Int32Array {
  const counters = new Int32Array(BATCH_NONCES * BATCH_SLOT / 4)
  const bytes = Buffer.from(counters.buffer)
  const unset = new Uint8Array(GCM_NONCE_BYTES)
  for (let slot = 0; slot < BATCH_NONCES; slot++) counterBlocks(unset, bytes, slot * BATCH_SLOT, BATCH_BLOCKS)
  return counters
}

// GCM's counter blocks for one 96-bit nonce: nonce || 1, nonce || 2, … Byte by byte: a
// TypedArray set() and a writeUInt32BE() per block cost a quarter of GHASH (measured).
function counterBlocks (nonce: Uint8Array, out: Buffer, at: number, blocks: number): void {
  for (let block = 0, start = at; block < blocks; block++, start += BLOCK) {
    for (let i = 0; i < GCM_NONCE_BYTES; i++) out[start + i] = nonce[i]
    writeWord(out, start + GCM_NONCE_BYTES, block + 1)
  }
}

/**
 * GHASH (state = (state ^ block)·H for each 16-byte block, the last one padded with zeros)
 * over bytes[start, end). One function with the product in locals: measured twice as fast
 * as a call per block.
 */
function ghash (table: Int32Array, state: Int32Array, bytes: Uint8Array, start: number, end: number): void {
  let x0 = state[0]
  let x1 = state[1]
  let x2 = state[2]
  let x3 = state[3]
  for (let block = start; block < end; block += BLOCK) {
    if (block + BLOCK <= end) {
      x0 ^= readWord(bytes, block)
      x1 ^= readWord(bytes, block + 4)
      x2 ^= readWord(bytes, block + 8)
      x3 ^= readWord(bytes, block + 12)
    } else {
      x0 ^= paddedWord(bytes, block, end)
      x1 ^= paddedWord(bytes, block + 4, end)
      x2 ^= paddedWord(bytes, block + 8, end)
      x3 ^= paddedWord(bytes, block + 12, end)
    }
    let z0 = 0
    let z1 = 0
    let z2 = 0
    let z3 = 0
    // One table entry per nibble of the block: 8 per word, 64 table words per position.
    for (let shift = 28, entry = 0; shift >= 0; shift -= 4, entry += 64) {
      const a = entry + ((x0 >>> shift) & 15) * 4
      const b = entry + 512 + ((x1 >>> shift) & 15) * 4
      const c = entry + 1024 + ((x2 >>> shift) & 15) * 4
      const d = entry + 1536 + ((x3 >>> shift) & 15) * 4
      z0 ^= table[a] ^ table[b] ^ table[c] ^ table[d]
      z1 ^= table[a + 1] ^ table[b + 1] ^ table[c + 1] ^ table[d + 1]
      z2 ^= table[a + 2] ^ table[b + 2] ^ table[c + 2] ^ table[d + 2]
      z3 ^= table[a + 3] ^ table[b + 3] ^ table[c + 3] ^ table[d + 3]
    }
    x0 = z0
    x1 = z1
    x2 = z2
    x3 = z3
  }
  state[0] = x0
  state[1] = x1
  state[2] = x2
  state[3] = x3
}

function writeWord (bytes: Uint8Array, at: number, word: number): void {
  bytes[at] = word >>> 24
  bytes[at + 1] = word >>> 16
  bytes[at + 2] = word >>> 8
  bytes[at + 3] = word
}

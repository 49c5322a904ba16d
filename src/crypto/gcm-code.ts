/**
 * The two loops of sealing that JavaScript runs slowly, GHASH and the XOR with the keystream,
 * as a small WebAssembly module written out here opcode by opcode (no toolchain and no binary
 * file: the functions below emit every byte of it). GHASH in JavaScript took 1,840 instructions
 * per 16-byte block, most of them bounds checks and spills around its 32-bit table words;
 * here the same table walk on 64-bit words takes about 330 (callgrind).
 *
 * Each key gets an instance with a 64 KB page of its own, laid out as below. Everything
 * runs synchronously, so the scratch areas are never seen half-written.
 */

/** GHASH's table, 4 bits of the multiplier at a time: entry (p, n) = n·H·x^(4p), 16 bytes each. */
export const TABLE = 0
const TABLE_BYTES = 32 * 16 * 16
/** The GHASH state sealing works on. */
const STATE = TABLE + TABLE_BYTES
/** GHASH of the authenticated data, kept while it repeats. */
export const AAD_STATE = STATE + 16
/** A batch's keystreams: per nonce, E(J0) then the keystream for the first 256 bytes. */
export const STREAMS = AAD_STATE + 16
export const STREAM_SLOT = 17 * 16
/** Nonces in a batch. */
export const STREAM_SLOTS = 64
const STREAMS_BYTES = STREAM_SLOTS * STREAM_SLOT
/** Longest plaintext (and authenticated data) sealed here; longer ones go to OpenSSL. */
export const MAX_BYTES = 16 * 1024
/** Where a sealed value is written: up to 16 bytes of header, the nonce, the ciphertext, the tag. */
export const OUT = STREAMS + STREAMS_BYTES
/** The keystream of a value longer than a batch slot holds, made on demand. */
export const LONG_STREAM = OUT + 16 + 12 + MAX_BYTES + 32
// 64 KB pages: one holds it all.
const PAGES = Math.ceil((LONG_STREAM + 16 + MAX_BYTES + 8) / 65536)

export interface GcmCode {
  /** The instance's memory. */
  heap: Buffer
  /** state = GHASH(state, heap[start, end)), `end - start` a multiple of 16. */
  ghash: (state: number, start: number, end: number) => void
  /**
   * Encrypts heap[data, data + length) in place with the keystream at `stream` (E(J0) first),
   * and writes the tag after it: GHASH from AAD_STATE over the ciphertext and the lengths.
   */
  seal: (data: number, length: number, stream: number, aadBits: number) => void
}

interface WasmApi {
  Module: new (bytes: Uint8Array) => object
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> }
}

const I32 = 0x7f
const I64 = 0x7e
const OP = {
  block: 0x02, loop: 0x03, br: 0x0c, brIf: 0x0d, end: 0x0b, call: 0x10,
  localGet: 0x20, localSet: 0x21, localTee: 0x22,
  i64Load: 0x29, i64Store: 0x37, i32Const: 0x41, i64Const: 0x42,
  i32GeU: 0x4f, i32Add: 0x6a, i32Mul: 0x6c, i32And: 0x71, i32Or: 0x72, i32Shl: 0x74, i32ShrU: 0x76,
  i64Xor: 0x85, i64Shl: 0x86, i64ShrU: 0x88, i32WrapI64: 0xa7, i64ExtendI32U: 0xad
} as const

function unsigned (n: number): number[] {
  const bytes = []
  do {
    const low = n & 0x7f
    n >>>= 7
    bytes.push(n === 0 ? low : low | 0x80)
  } while (n !== 0)
  return bytes
}

function signed (n: number): number[] {
  const bytes = []
  for (;;) {
    const low = n & 0x7f
    n >>= 7
    const done = (n === 0 && (low & 0x40) === 0) || (n === -1 && (low & 0x40) !== 0)
    bytes.push(done ? low : low | 0x80)
    if (done) return bytes
  }
}

const vector = (items: number[][]): number[] => [...unsigned(items.length), ...items.flat()]
const section = (id: number, body: number[]): number[] => [id, ...unsigned(body.length), ...body]
const get = (local: number): number[] => [OP.localGet, local]
const set = (local: number): number[] => [OP.localSet, local]
const i32 = (n: number): number[] => [OP.i32Const, ...signed(n)]
const i64 = (n: number): number[] => [OP.i64Const, ...signed(n)]
// Alignment hint 8 bytes (2^3); the offset is added to the address on the stack.
const load64 = (offset: number): number[] => [OP.i64Load, 3, ...unsigned(offset)]
const store64 = (offset: number): number[] => [OP.i64Store, 3, ...unsigned(offset)]

// ghash(state, start, end). The state and the blocks are read as two little-endian 64-bit
// words: XOR does not care about byte order, and the table's entries are stored in GCM's
// byte order too, so the words written back are the state's bytes in GCM's order.
function ghashBody (): number[] {
  const [state, start, end, s0, s1, x0, x1, z0, z1, at] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
  const body = [...get(state), ...load64(0), ...set(s0), ...get(state), ...load64(8), ...set(s1)]
  body.push(OP.block, 0x40, OP.loop, 0x40, ...get(start), ...get(end), OP.i32GeU, OP.brIf, 1)
  body.push(...get(s0), ...get(start), ...load64(0), OP.i64Xor, ...set(x0))
  body.push(...get(s1), ...get(start), ...load64(8), OP.i64Xor, ...set(x1))
  // Nibble p of the block (high nibble of each byte first) picks entry (p, nibble).
  for (let position = 0; position < 32; position++) {
    const byte = position >> 1
    const shift = (byte % 8) * 8 + (position % 2 === 0 ? 4 : 0)
    body.push(...get(byte < 8 ? x0 : x1), ...(shift === 0 ? [] : [...i64(shift), OP.i64ShrU]), OP.i32WrapI64, ...i32(15), OP.i32And, ...i32(4), OP.i32Shl, ...set(at))
    const entry = TABLE + position * 256
    if (position === 0) {
      body.push(...get(at), ...load64(entry), ...set(z0), ...get(at), ...load64(entry + 8), ...set(z1))
    } else {
      body.push(...get(z0), ...get(at), ...load64(entry), OP.i64Xor, ...set(z0))
      body.push(...get(z1), ...get(at), ...load64(entry + 8), OP.i64Xor, ...set(z1))
    }
  }
  body.push(...get(z0), ...set(s0), ...get(z1), ...set(s1))
  body.push(...get(start), ...i32(16), OP.i32Add, ...set(start), OP.br, 0, OP.end, OP.end)
  body.push(...get(state), ...get(s0), ...store64(0), ...get(state), ...get(s1), ...store64(8), OP.end)
  return [...vector([[...unsigned(6), I64], [...unsigned(1), I32]]), ...body]
}

// A 32-bit length in bits as GHASH's last block wants it: big-endian in the high half of a
// little-endian 64-bit store.
function bigEndianHigh (local: number): number[] {
  const b = get(local)
  return [
    ...b, ...i32(24), OP.i32Shl, ...b, ...i32(0xff00), OP.i32And, ...i32(8), OP.i32Shl, OP.i32Or,
    ...b, ...i32(8), OP.i32ShrU, ...i32(0xff00), OP.i32And, OP.i32Or, ...b, ...i32(24), OP.i32ShrU, OP.i32Or,
    OP.i64ExtendI32U, ...i64(32), OP.i64Shl
  ]
}

// seal(data, length, stream, aadBits); function 0 is ghash.
function sealBody (): number[] {
  const [data, length, stream, aadBits, i, blocks, bits] = [0, 1, 2, 3, 4, 5, 6]
  const body = [...i32(0), ...i32(0), ...load64(AAD_STATE), ...store64(STATE)]
  body.push(...i32(0), ...i32(0), ...load64(AAD_STATE + 8), ...store64(STATE + 8))
  // Eight bytes at a time; the few bytes past the end are zeroed right after.
  body.push(OP.block, 0x40, OP.loop, 0x40, ...get(i), ...get(length), OP.i32GeU, OP.brIf, 1)
  body.push(...get(data), ...get(i), OP.i32Add, ...get(data), ...get(i), OP.i32Add, ...load64(0))
  body.push(...get(stream), ...get(i), OP.i32Add, ...load64(16), OP.i64Xor, ...store64(0))
  body.push(...get(i), ...i32(8), OP.i32Add, ...set(i), OP.br, 0, OP.end, OP.end)
  body.push(...get(data), ...get(length), OP.i32Add, ...i64(0), ...store64(0))
  body.push(...get(data), ...get(length), OP.i32Add, ...i64(0), ...store64(8))
  // The lengths block after the zero-padded ciphertext.
  body.push(...get(data), ...get(length), ...i32(15), OP.i32Add, ...i32(-16), OP.i32And, OP.i32Add, OP.localTee, blocks)
  body.push(...bigEndianHigh(aadBits), ...store64(0))
  body.push(...get(length), ...i32(8), OP.i32Mul, ...set(bits), ...get(blocks), ...bigEndianHigh(bits), ...store64(8))
  body.push(...i32(STATE), ...get(data), ...get(blocks), ...i32(16), OP.i32Add, OP.call, 0)
  // The tag, E(J0) XOR the GHASH, right after the ciphertext.
  for (const half of [0, 8]) {
    body.push(...get(data), ...get(length), OP.i32Add, ...i32(0), ...load64(STATE + half))
    body.push(...get(stream), ...load64(half), OP.i64Xor, ...store64(half))
  }
  body.push(OP.end)
  return [...vector([[...unsigned(3), I32]]), ...body]
}

function moduleBytes (): Uint8Array {
  const name = (text: string): number[] => [...unsigned(text.length), ...Buffer.from(text)]
  const code = [ghashBody(), sealBody()]
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vector([[0x60, ...vector([[I32], [I32], [I32]]), 0], [0x60, ...vector([[I32], [I32], [I32], [I32]]), 0]])),
    ...section(3, vector([[0], [1]])),
    ...section(5, vector([[0x00, ...unsigned(PAGES)]])),
    ...section(7, vector([[...name('ghash'), 0, 0], [...name('seal'), 0, 1], [...name('memory'), 2, 0]])),
    ...section(10, vector(code.map((body) => [...unsigned(body.length), ...body])))
  ])
}

let compiled: object | undefined

/**
 * A fresh instance with its own memory, or undefined where WebAssembly is not available
 * (node --jitless) or the memory cannot be had: sealing then goes to OpenSSL.
 */
export function gcmCode (wasm = (globalThis as { WebAssembly?: WasmApi | null }).WebAssembly): GcmCode | undefined {
  if (wasm === undefined || wasm === null) return undefined
  try {
    compiled ??= new wasm.Module(moduleBytes())
    const { exports } = new wasm.Instance(compiled, {})
    const memory = exports.memory as { buffer: ArrayBuffer }
    return { heap: Buffer.from(memory.buffer), ghash: exports.ghash as GcmCode['ghash'], seal: exports.seal as GcmCode['seal'] }
  } catch {
    return undefined
  }
}

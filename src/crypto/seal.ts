import { GCM_NONCE_BYTES, type GcmKey } from './gcm-key'
import { formatKeyId, KEY_ID_BYTES, type KeyRing } from './key-ring'

// Layout of a sealed value before base64url:
//   version (1) | key id (4) | IV (12) | ciphertext (n) | GCM tag (16)
// The authenticated data is version | key id | context (UTF-8), so neither the
// header nor the cookie name can be swapped without failing authentication.
// AES-256-GCM as NIST SP 800-38D defines it, computed by GcmKey (gcm-key.ts).
export const FORMAT_VERSION = 1
const HEADER_BYTES = 1 + KEY_ID_BYTES
const TAG_BYTES = 16
const BODY_START = HEADER_BYTES + GCM_NONCE_BYTES
/** Bytes a sealed value adds to its plaintext (before base64url): 33. */
export const SEAL_OVERHEAD = BODY_START + TAG_BYTES
const MIN_TEXT_LENGTH = Math.ceil(SEAL_OVERHEAD * 4 / 3)

export type UnsealFailure = 'malformed' | 'unknown format version' | 'unknown key id' | 'authentication failed'

export type Unsealed =
  | { ok: true, plaintext: Buffer, keyId: string, current: boolean }
  | { ok: false, reason: UnsealFailure }

/** The base64url length of a value sealed from `plaintextBytes` bytes. */
export function sealedLength (plaintextBytes: number): number {
  return Math.ceil((plaintextBytes + SEAL_OVERHEAD) * 4 / 3)
}

/** Throws when the context is not a string: a programming error, not bad input. */
export function checkContext (context: unknown): void {
  if (typeof context !== 'string') throw new TypeError('fastify-sessions crypto: context must be a string (the cookie name)')
}

/** Throws for arguments no caller should pass: these are programming errors, not bad input. */
export function checkSealArguments (context: unknown, plaintext: unknown): void {
  checkContext(context)
  if (typeof plaintext !== 'string' && !(plaintext instanceof Uint8Array)) {
    throw new TypeError('seal: plaintext must be a string or a Buffer')
  }
}

// The authenticated data of the last key id and context, and the header it starts with:
// nearly every call has the same (the cookie name), and building them anew would cost a
// tenth of a seal. Process-wide on purpose: they depend on nothing but their two inputs,
// and are replaced whole.
interface Authenticated { id: number, context: string, bytes: Buffer, header: Buffer }
let last: Authenticated = { id: -1, context: '', bytes: Buffer.alloc(0), header: Buffer.alloc(0) }

function authenticated (id: number, context: string): Authenticated {
  if (last.id === id && last.context === context) return last
  const bytes = Buffer.allocUnsafe(HEADER_BYTES + Buffer.byteLength(context))
  bytes[0] = FORMAT_VERSION
  bytes.writeUInt32BE(id, 1)
  bytes.write(context, HEADER_BYTES)
  last = { id, context, bytes, header: bytes.subarray(0, HEADER_BYTES) }
  return last
}

/** Encrypts `plaintext` under the ring's current key, bound to `context`; returns base64url text. */
export function seal (ring: KeyRing, context: string, plaintext: string | Uint8Array): string {
  checkSealArguments(context, plaintext)
  const { id, key } = ring.current
  const bytes = typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext
  const { header, bytes: aad } = authenticated(id, context)
  return key.seal(header, aad, bytes)
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
// Bits of the last character that carry no data, by text length modulo 4.
const UNUSED_TAIL_BITS = [0, 0, 0b1111, 0b11]

// Node's decoder also accepts '+', '/' and '=', skips stray characters, reads
// U+0141 as 'A' (low byte only) and ignores trailing bits. Accepting only the one
// canonical spelling makes re-encoded, padded or mangled copies fail as malformed.
// A regular expression would say the same but costs five times the decoding on large values.
function decode (text: unknown): Buffer | undefined {
  if (typeof text !== 'string' || text.length < MIN_TEXT_LENGTH || text.length % 4 === 1) return undefined
  if (Buffer.byteLength(text) !== text.length) return undefined
  if (text.includes('+') || text.includes('/') || text.includes('=')) return undefined
  const bytes = Buffer.from(text, 'base64url')
  if (bytes.length !== Math.floor(text.length * 3 / 4)) return undefined
  const tail = ALPHABET.indexOf(text[text.length - 1])
  return (tail & UNUSED_TAIL_BITS[text.length % 4]) === 0 ? bytes : undefined
}

function open (key: GcmKey, id: number, sealed: Buffer, context: string): Buffer | undefined {
  return key.open(sealed.subarray(HEADER_BYTES, BODY_START), authenticated(id, context).bytes, sealed.subarray(BODY_START))
}

function failure (reason: UnsealFailure): Unsealed {
  return { ok: false, reason }
}

/**
 * Opens a value sealed by `seal` for the same `context`. Never throws for any
 * `sealed` input: a bad value yields a reason. `current: false` means an older
 * secret sealed it and it should be re-issued.
 */
export function unseal (ring: KeyRing, context: string, sealed: string): Unsealed {
  checkContext(context)
  const bytes = decode(sealed)
  if (bytes === undefined) return failure('malformed')
  if (bytes[0] !== FORMAT_VERSION) return failure('unknown format version')
  const id = bytes.readUInt32BE(1)
  const found = ring.find(id)
  if (found === undefined) return failure('unknown key id')
  const plaintext = open(found.key, id, bytes, context)
  if (plaintext === undefined) return failure('authentication failed')
  return { ok: true, plaintext, keyId: formatKeyId(id), current: found.current }
}

import { InvalidOptionError } from '../errors'
import { GcmKey } from './gcm-key'
import { deriveKey } from './signer'

export const KEY_BYTES = 32
export const KEY_ID_BYTES = 4
const SEAL_PURPOSE = 'session-seal-aes-256-gcm-v1'
// The id comes from its own HKDF output, so publishing it in every cookie says
// nothing about the encryption key; HKDF output is already uniform, no extra hash needed.
const KEY_ID_PURPOSE = 'session-seal-key-id-v1'
const MAX_KEY_ID = 0xffffffff

/** One sealing key; `id` is the 32-bit key id written in the clear header. */
export interface SealKey {
  readonly id: number
  // Made once: its AES object and GHASH table serve every value sealed or opened.
  readonly key: GcmKey
  readonly raw: Buffer
}

function sealKey (id: number, raw: Buffer): SealKey {
  return { id, key: new GcmKey(raw), raw }
}

/**
 * What a worker needs to rebuild a ring: the derived sealing keys only. The
 * secrets stay on the main thread, since they also derive the signing keys.
 * Structured clone turns the Buffers into Uint8Arrays; the ring accepts both.
 */
export interface KeyRingMaterial {
  readonly keys: ReadonlyArray<{ readonly id: number, readonly key: Uint8Array }>
}

export interface FoundKey {
  readonly key: GcmKey
  /** False when the key belongs to an older secret: the value should be re-issued. */
  readonly current: boolean
}

/** Formats a key id the way logs and results show it: 8 hex digits. */
export function formatKeyId (id: number): string {
  return id.toString(16).padStart(KEY_ID_BYTES * 2, '0')
}

function fromSecret (secret: unknown, index: number): SealKey {
  if (typeof secret !== 'string' || secret === '') {
    throw new InvalidOptionError('secret', `entry ${index} must be a non-empty string`)
  }
  const id = deriveKey(secret, KEY_ID_PURPOSE).readUInt32BE(0)
  return sealKey(id, deriveKey(secret, SEAL_PURPOSE))
}

function fromMaterial (entry: unknown, index: number): SealKey {
  const { id, key } = (entry ?? {}) as { id?: unknown, key?: unknown }
  const validId = Number.isInteger(id) && (id as number) >= 0 && (id as number) <= MAX_KEY_ID
  if (!validId || !(key instanceof Uint8Array) || key.byteLength !== KEY_BYTES) {
    throw new InvalidOptionError('secret', `key material entry ${index} is not a ${KEY_BYTES}-byte key with a 32-bit id`)
  }
  return sealKey(id as number, Buffer.from(key.buffer, key.byteOffset, key.byteLength))
}

function entriesOf (source: unknown): SealKey[] {
  if (typeof source === 'string') return [fromSecret(source, 0)]
  if (Array.isArray(source)) return source.map(fromSecret)
  const keys = (source as Partial<KeyRingMaterial> | null | undefined)?.keys
  if (!Array.isArray(keys)) throw new InvalidOptionError('secret', 'expected a secret, a list of secrets, or key ring material')
  return keys.map(fromMaterial)
}

/**
 * The sealing keys for a list of secrets, first = current. Keys are derived
 * once here; unseal picks a key by the id in the header, never by trying each.
 */
export class KeyRing {
  #keys: SealKey[] = []
  #byId = new Map<number, number>()

  /** From `secret` (string or list, first = current) or from another ring's `material()`. */
  constructor (source: string | readonly string[] | KeyRingMaterial) {
    for (const entry of entriesOf(source)) this.#add(entry)
    if (this.#keys.length === 0) throw new InvalidOptionError('secret', 'at least one secret is required')
  }

  /** The key new values are sealed with. */
  get current (): SealKey {
    return this.#keys[0]
  }

  /** Ids of every key, current first, as 8 hex digits. */
  get keyIds (): string[] {
    return this.#keys.map((entry) => formatKeyId(entry.id))
  }

  find (id: number): FoundKey | undefined {
    const index = this.#byId.get(id)
    return index === undefined ? undefined : { key: this.#keys[index].key, current: index === 0 }
  }

  /** The keys to hand to a worker once, at pool start. */
  material (): KeyRingMaterial {
    return { keys: this.#keys.map(({ id, raw }) => ({ id, key: raw })) }
  }

  #add (entry: SealKey): void {
    const index = this.#byId.get(entry.id)
    if (index === undefined) {
      this.#byId.set(entry.id, this.#keys.push(entry) - 1)
    } else if (!this.#keys[index].raw.equals(entry.raw)) {
      // Two different secrets with one 32-bit id: about one chance in four billion.
      throw new InvalidOptionError('secret', `two secrets share key id ${formatKeyId(entry.id)}; replace one of them`)
    }
  }
}

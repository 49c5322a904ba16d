import { hash, randomFillSync } from 'node:crypto'

const ID_BYTES = 32
// One syscall fills ids for many sessions; each id is still 256 fresh random bits.
const POOL_IDS = 128
const pool = Buffer.alloc(ID_BYTES * POOL_IDS)
let next = POOL_IDS

/** A new session id: 32 random bytes, base64url (43 characters). */
export function newSessionId (): string {
  if (next === POOL_IDS) {
    randomFillSync(pool)
    next = 0
  }
  const start = next++ * ID_BYTES
  const id = pool.toString('base64url', start, start + ID_BYTES)
  pool.fill(0, start, start + ID_BYTES)
  return id
}

/** The key a store sees: a SHA-256 digest, so a store dump yields no usable cookie. */
export function storeKey (id: string): string {
  // The one-shot form: a third of the cost of createHash() for a short input.
  return hash('sha256', id, 'base64url')
}

import { createHmac } from 'node:crypto'
import { deriveKey } from './crypto/signer'
import { InvalidUserError } from './errors'

/** Names the user of a session: a session key, or a function of the session data. */
export type UserKey = string | ((data: Record<string, unknown>) => unknown)

// Digests of the users seen lately: a commit of a signed-in session computes one, and the
// same few users commit again and again. Cleared when full; recomputing is cheap.
const MEMO_SIZE = 1000

/**
 * Turns user ids into the digests that records carry (`SessionRecord.user`): an HMAC under a
 * key derived from the secret, so a store dump shows no user id and a guessable id cannot
 * be confirmed by hashing it. Records are filed under the current secret's digest; a
 * revocation or a listing looks under every secret's, so rotation loses no session.
 */
export class UserDigest {
  #keys: Buffer[]
  #userKey: UserKey
  #memo = new Map<string, string>()

  constructor (secrets: readonly string[], userKey: UserKey) {
    this.#keys = secrets.map((secret) => deriveKey(secret, 'user index'))
    this.#userKey = userKey
  }

  /** The digest of the user this session data names, or undefined when it names none. */
  of (data: Record<string, unknown>): string | undefined {
    const userKey = this.#userKey
    const id = typeof userKey === 'string' ? (Object.hasOwn(data, userKey) ? data[userKey] : undefined) : userKey(data)
    if (id === undefined || id === null) return undefined
    const text = userIdText(id, 'the user id that userKey names')
    let digest = this.#memo.get(text)
    if (digest === undefined) {
      if (this.#memo.size >= MEMO_SIZE) this.#memo.clear()
      digest = this.#digest(this.#keys[0], text)
      this.#memo.set(text, digest)
    }
    return digest
  }

  /** The digests one user's records can carry: one per secret, the current one first. */
  all (id: unknown): string[] {
    const text = userIdText(id, 'the user id given')
    return this.#keys.map((key) => this.#digest(key, text))
  }

  #digest (key: Buffer, text: string): string {
    return createHmac('sha256', key).update(text).digest('base64url')
  }
}

// Numbers and strings name the same user whichever form the application has at hand.
function userIdText (id: unknown, what: string): string {
  if (typeof id === 'string' && id !== '') return id
  if ((typeof id === 'number' && Number.isFinite(id)) || typeof id === 'bigint') return String(id)
  throw new InvalidUserError(what)
}

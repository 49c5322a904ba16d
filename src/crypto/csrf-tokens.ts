import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { deriveKey } from './signer'

const PURPOSE = 'csrf-token-v1'
const SALT_BYTES = 16
// `<salt>.<mac>`: 16 bytes and 32 bytes in base64url. Anything else is refused before any HMAC.
const FORMAT = /^[\w-]{22}\.[\w-]{43}$/
const SALT_LENGTH = 22

/**
 * Session-bound CSRF tokens: `salt.HMAC-SHA256(k, salt.id)` under a key derived per secret,
 * with a fresh random salt per token. The id goes into the MAC but never into the token, so a
 * leaked token says nothing about the session (OWASP's advice since CheatSheetSeries#1493);
 * a new id (regenerate() at login) makes every earlier token useless. The salt makes each
 * token different, so a page compressed over TLS does not repeat one secret value (BREACH),
 * and nothing has to be stored: any token the session's id and a current or older secret
 * can reproduce is valid.
 */
export class CsrfTokens {
  #keys: Buffer[]

  constructor (secrets: readonly string[]) {
    this.#keys = secrets.map((secret) => deriveKey(secret, PURPOSE))
  }

  issue (sessionId: string): string {
    const salt = randomBytes(SALT_BYTES).toString('base64url')
    return salt + '.' + this.#mac(this.#keys[0], salt, sessionId)
  }

  /** False for anything but a token of this session; never throws. */
  verify (sessionId: string, token: unknown): boolean {
    if (typeof token !== 'string' || !FORMAT.test(token)) return false
    const salt = token.slice(0, SALT_LENGTH)
    const given = Buffer.from(token.slice(SALT_LENGTH + 1))
    // Every key is tried, so how long this takes does not say which secret matched.
    let valid = false
    for (const key of this.#keys) {
      if (timingSafeEqual(given, Buffer.from(this.#mac(key, salt, sessionId)))) valid = true
    }
    return valid
  }

  #mac (key: Buffer, salt: string, sessionId: string): string {
    return createHmac('sha256', key).update(salt + '.' + sessionId).digest('base64url')
  }
}

import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto'

const ID_LENGTH = 43
const SIGNED_LENGTH = ID_LENGTH * 2 + 1
const SALT = 'fastify-sessions'

/** Derives a 32-byte key for one purpose, so no two uses ever share key material. */
export function deriveKey (secret: string, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, SALT, purpose, 32))
}

export type Verified = { ok: true, id: string, current: boolean } | { ok: false, reason: string }

/**
 * Signs session ids for the cookie of a server-side store: `<id>.<HMAC-SHA256>`.
 * The first secret signs; every secret verifies, so secrets can rotate. The key is derived
 * for one cookie name, so a cookie issued under one name is refused under another (two
 * registrations sharing a store and a secret, or a cookie moved by an attacker).
 */
export class CookieSigner {
  #keys: Buffer[]

  constructor (secrets: readonly string[], cookieName: string) {
    this.#keys = secrets.map((secret) => deriveKey(secret, `session-id-signature-v2:${cookieName}`))
  }

  sign (id: string): string {
    return id + '.' + this.#mac(this.#keys[0], id)
  }

  verify (value: string): Verified {
    if (value.length !== SIGNED_LENGTH || value.charCodeAt(ID_LENGTH) !== 46) {
      return { ok: false, reason: 'malformed cookie' }
    }
    const id = value.slice(0, ID_LENGTH)
    const given = Buffer.from(value.slice(ID_LENGTH + 1))
    for (let i = 0; i < this.#keys.length; i++) {
      const expected = Buffer.from(this.#mac(this.#keys[i], id))
      if (given.length === expected.length && timingSafeEqual(given, expected)) {
        return { ok: true, id, current: i === 0 }
      }
    }
    return { ok: false, reason: 'bad signature' }
  }

  #mac (key: Buffer, id: string): string {
    return createHmac('sha256', key).update(id).digest('base64url')
  }
}

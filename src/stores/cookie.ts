import { parseJson } from '../json'
import { InvalidOptionError } from '../errors'
import type { SealedSession, StatelessStore } from '../store'

/** Browsers keep at most about 4096 bytes of one cookie (RFC 6265 §6.1 asks for at least that). */
export const MAX_COOKIE_BYTES = 4096
// Below this a cookie cannot hold even an empty session with its attributes.
const MIN_COOKIE_BYTES = 256
const ID = /^[A-Za-z0-9_-]{43}$/

export interface CookieStoreOptions {
  /** Longest `Set-Cookie` header value, in bytes; at most and by default 4096. */
  maxCookieBytes?: number
}

function isTime (value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0
}

function isData (value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

function fromPayload (value: unknown): SealedSession | undefined {
  if (!Array.isArray(value) || value.length !== 4) return undefined
  const [id, createdAt, lastActive, data] = value as unknown[]
  if (typeof id !== 'string' || !ID.test(id) || !isTime(createdAt) || !isTime(lastActive) || !isData(data)) return undefined
  return { id, data, createdAt, lastActive }
}

/**
 * Keeps the whole session in the cookie, sealed with AES-256-GCM: no server-side
 * state, so nothing to run or to replicate. The price: a cookie cannot be revoked
 * before it expires (see the README), and the session must fit in one cookie.
 */
export class CookieStore implements StatelessStore {
  readonly stateless = true
  readonly maxCookieBytes: number

  constructor (options: CookieStoreOptions = {}) {
    const { maxCookieBytes = MAX_COOKIE_BYTES } = options
    if (!Number.isInteger(maxCookieBytes) || maxCookieBytes < MIN_COOKIE_BYTES || maxCookieBytes > MAX_COOKIE_BYTES) {
      throw new InvalidOptionError('CookieStore maxCookieBytes', `must be an integer from ${MIN_COOKIE_BYTES} to ${MAX_COOKIE_BYTES}`)
    }
    this.maxCookieBytes = maxCookieBytes
  }

  // An array rather than an object: the field names would cost bytes in every cookie.
  encode (session: SealedSession): string {
    return JSON.stringify([session.id, session.createdAt, session.lastActive, session.data])
  }

  decode (payload: string): SealedSession | undefined {
    try {
      return fromPayload(parseJson(payload))
    } catch {
      // Authentic but unreadable: written by another version of the payload format.
      return undefined
    }
  }
}

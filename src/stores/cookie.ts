import { parseJson } from '../json'
import type { SealedSession, SessionStore, StatelessStore } from '../store'
import { integer, knownKeys, plainObject, seconds, sessionStore } from '../validate'

/** Browsers keep at most about 4096 bytes of one cookie (RFC 6265 §6.1 asks for at least that). */
export const MAX_COOKIE_BYTES = 4096
// Below this a cookie cannot hold even an empty session with its attributes.
const MIN_COOKIE_BYTES = 256
// The payload, before sealing: a format byte, the id's 32 bytes, the created and
// last-active times (milliseconds, 48 bits each) and the data as JSON. Binary rather
// than JSON for the fixed part: 43 fewer characters in every cookie, both ways.
const PAYLOAD_FORMAT = 1
const ID_START = 1
const ID_BYTES = 32
const CREATED_AT = ID_START + ID_BYTES
const LAST_ACTIVE = CREATED_AT + 6
const DATA_START = LAST_ACTIVE + 6

export interface CookieStoreOptions {
  /** Longest `Set-Cookie` header value, in bytes; at most and by default 4096. */
  maxCookieBytes?: number
  /**
   * A server-side store (Redis, say) for per-user "not before" stamps: with it and the
   * plugin's `userKey`, `fastify.sessions.revokeUser()` ends sealed sessions too, at the
   * price of one stamp lookup whenever a signed-in session is loaded.
   */
  revocations?: SessionStore
  /** Seconds a stamp lookup answers later ones of the same user too. Default 0: every load looks. */
  revocationCache?: number
}

function isData (value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

function fromPayload (payload: Buffer): SealedSession | undefined {
  if (payload.length < DATA_START + 2 || payload[0] !== PAYLOAD_FORMAT) return undefined
  const createdAt = payload.readUIntBE(CREATED_AT, 6)
  const lastActive = payload.readUIntBE(LAST_ACTIVE, 6)
  const data = parseJson(payload.toString('utf8', DATA_START))
  if (createdAt === 0 || lastActive === 0 || !isData(data)) return undefined
  return { id: payload.toString('base64url', ID_START, CREATED_AT), data, createdAt, lastActive }
}

/**
 * Keeps the whole session in the cookie, sealed with AES-256-GCM: no server-side
 * state, so nothing to run or to replicate. The price: a cookie cannot be revoked
 * before it expires (see the README), and the session must fit in one cookie.
 */
export class CookieStore implements StatelessStore {
  readonly stateless = true
  readonly maxCookieBytes: number
  readonly revocations: SessionStore | undefined
  readonly revocationCache: number

  constructor (options: CookieStoreOptions = {}) {
    const given = plainObject('CookieStore options', options)
    knownKeys('CookieStore ', given, ['maxCookieBytes', 'revocations', 'revocationCache'])
    this.maxCookieBytes = integer('CookieStore maxCookieBytes', given.maxCookieBytes, MAX_COOKIE_BYTES, MIN_COOKIE_BYTES, MAX_COOKIE_BYTES)
    this.revocations = given.revocations === undefined ? undefined : sessionStore('CookieStore revocations', given.revocations)
    this.revocationCache = given.revocationCache === 0 ? 0 : seconds('CookieStore revocationCache', given.revocationCache, 0)
  }

  encode (session: SealedSession): Buffer {
    const json = JSON.stringify(session.data)
    const payload = Buffer.allocUnsafe(DATA_START + Buffer.byteLength(json))
    payload[0] = PAYLOAD_FORMAT
    payload.write(session.id, ID_START, ID_BYTES, 'base64url')
    payload.writeUIntBE(session.createdAt, CREATED_AT, 6)
    payload.writeUIntBE(session.lastActive, LAST_ACTIVE, 6)
    payload.write(json, DATA_START)
    return payload
  }

  decode (payload: Buffer): SealedSession | undefined {
    try {
      return fromPayload(payload)
    } catch {
      // Authentic but unreadable: written by another version of the payload format.
      return undefined
    }
  }
}

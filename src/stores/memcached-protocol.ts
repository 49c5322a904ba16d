import { RecordTooLargeError } from '../errors'

// The few memcached operations MemcachedStore needs, behind one small interface, so that a
// meta-protocol client can replace the binary one without touching the store.

/** What a successful write leaves: the item's new CAS token. A failed one says why. */
export type Written = { ok: true, cas: Buffer } | { ok: false, reason: 'exists' | 'missing' }

/** An item as read: its value and its CAS token. */
export interface Item {
  value: Buffer
  cas: Buffer
}

export interface CasClient {
  /** The item, or undefined when memcached does not hold the key. */
  gets (key: string): Promise<Item | undefined>
  /** Stores only when memcached does not hold the key. */
  add (key: string, value: Buffer, exptime: number): Promise<Written>
  /** Stores only when the item's CAS token is still `cas`. */
  cas (key: string, value: Buffer, exptime: number, cas: Buffer): Promise<Written>
  delete (key: string): Promise<void>
}

/** A binary-protocol response as memjs parses it. */
export interface MemcachedResponse {
  header: { status: number, cas: Buffer }
  val: Buffer
}

/**
 * The part of a `memjs` Client the store uses: the low-level request API that memjs exports
 * and types (`perform`, `incrSeq`, `seq`). memjs' own methods cannot send a CAS token.
 */
export interface MemjsClient {
  readonly seq: number
  incrSeq (): void
  perform (key: string, request: Buffer, seq: number, callback?: (err: Error | null, response: MemcachedResponse | null) => void, retries?: number): void
}

const OP_GET = 0x00
const OP_ADD = 0x02
const OP_REPLACE = 0x03
const OP_DELETE = 0x04

const STATUS_OK = 0
const STATUS_NOT_FOUND = 1
const STATUS_EXISTS = 2
const STATUS_TOO_LARGE = 3

const NO_CAS = Buffer.alloc(8)
const EMPTY = Buffer.alloc(0)
const TOO_LARGE_LIMIT = "memcached's item size limit: 1 MB unless the server was started with a larger -I"

// The 24-byte binary request header, as memjs' Utils.makeRequestBuffer lays it out, plus the
// CAS field at bytes 16 to 23 that memjs leaves zero. Built here rather than by memjs so that
// loading fastify-sessions never needs memjs installed: it is an optional peer.
function request (opcode: number, key: string, extras: Buffer, value: Buffer, opaque: number, cas: Buffer): Buffer {
  const keyBytes = Buffer.byteLength(key)
  const body = extras.length + keyBytes + value.length
  const buf = Buffer.alloc(24 + body)
  buf[0] = 0x80
  buf[1] = opcode
  buf.writeUInt16BE(keyBytes, 2)
  buf[4] = extras.length
  buf.writeUInt32BE(body, 8)
  buf.writeUInt32BE(opaque, 12)
  cas.copy(buf, 16)
  extras.copy(buf, 24)
  buf.write(key, 24 + extras.length)
  value.copy(buf, 24 + extras.length + keyBytes)
  return buf
}

// SET and ADD extras: 4 bytes of flags (unused: 0) and the 4-byte expiration.
function storeExtras (exptime: number): Buffer {
  const extras = Buffer.alloc(8)
  extras.writeUInt32BE(exptime, 4)
  return extras
}

/** The response's status, which must be one of `expected`; anything else is a failure. */
function statusOf ({ header, val }: MemcachedResponse, expected: readonly number[]): number {
  if (!expected.includes(header.status)) throw new Error(`memcached answered status ${header.status}: ${val.toString('utf8', 0, 200)}`)
  return header.status
}

/** The CasClient over a memjs client's binary-protocol connections. */
export function memjsCasClient (client: MemjsClient): CasClient {
  // Writes are sent once (retries: 1): memjs would resend a write whose answer timed out, and
  // a compare-and-set or an add that had applied would then come back as a conflict. Reads
  // and deletes use the client's own retries.
  const send = (opcode: number, key: string, extras: Buffer, value: Buffer, cas: Buffer, retries?: number): Promise<MemcachedResponse> =>
    new Promise((resolve, reject) => {
      client.incrSeq()
      // memjs wraps seq with `&= 0xffffffff`, which yields a signed number: negative after
      // 2^31 requests on one client, where the header's unsigned opaque field cannot hold it.
      // memjs matches a response to its callback by the opaque it reads back, unsigned, so
      // the unsigned value serves both.
      const seq = client.seq >>> 0
      client.perform(key, request(opcode, key, extras, value, seq, cas), seq, (err, response) => {
        if (err !== null) reject(err)
        else resolve(response as MemcachedResponse)
      }, retries)
    })

  const write = async (opcode: number, key: string, value: Buffer, exptime: number, cas: Buffer): Promise<Written> => {
    const response = await send(opcode, key, storeExtras(exptime), value, cas, 1)
    switch (statusOf(response, [STATUS_OK, STATUS_EXISTS, STATUS_NOT_FOUND, STATUS_TOO_LARGE])) {
      case STATUS_OK: return { ok: true, cas: Buffer.from(response.header.cas) }
      case STATUS_EXISTS: return { ok: false, reason: 'exists' }
      case STATUS_NOT_FOUND: return { ok: false, reason: 'missing' }
      default: throw new RecordTooLargeError(value.length, TOO_LARGE_LIMIT)
    }
  }

  return {
    async gets (key) {
      const response = await send(OP_GET, key, EMPTY, EMPTY, NO_CAS)
      if (statusOf(response, [STATUS_OK, STATUS_NOT_FOUND]) === STATUS_NOT_FOUND) return undefined
      return { value: response.val, cas: Buffer.from(response.header.cas) }
    },
    add: (key, value, exptime) => write(OP_ADD, key, value, exptime, NO_CAS),
    // REPLACE with a token is the same compare-and-set as SET with one, except when the value
    // is too large: memcached then deletes the item a SET was meant for, and keeps it for a
    // REPLACE (measured on 1.6.18). A session must not vanish because one write was refused.
    cas: (key, value, exptime, cas) => write(OP_REPLACE, key, value, exptime, cas),
    async delete (key) {
      // A resent delete does no harm: the client's own retries apply.
      statusOf(await send(OP_DELETE, key, EMPTY, EMPTY, NO_CAS), [STATUS_OK, STATUS_NOT_FOUND])
    }
  }
}

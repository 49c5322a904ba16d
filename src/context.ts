import { parseJson } from './json'
import { defaultAttributes, type DefaultAttributes } from './cookie-line'
import { Sealer } from './crypto/sealer'
import { CookieSigner } from './crypto/signer'
import { StoreUnavailableError } from './errors'
import type { ResolvedOptions } from './options'
import { KeyedQueue } from './queue'
import { RecentCookies } from './recent-cookies'
import type { SessionRecord, SessionStore, StatelessStore } from './store'

type GuardedStore = Required<Pick<SessionStore, 'get' | 'set' | 'destroy'>> & Pick<SessionStore, 'touch'>

/** A signed cookie known to be authentic: its id and store key. */
export interface SignedCookie {
  id: string
  key: string
  /** Signed with the current secret; otherwise it is re-issued. */
  current: boolean
}

/** A sealed cookie known to be authentic: its plaintext payload. */
export interface OpenedCookie {
  payload: Buffer
  current: boolean
}

/** A stateless store with the sealer that seals its cookies. */
export interface StatelessCookie {
  codec: StatelessStore
  sealer: Sealer
  opened: RecentCookies<OpenedCookie>
}

// Characters of cookies (and sealed payloads) kept per registration: about 16,000
// signed cookies, or 500 sealed cookies of the largest size.
export const RECENT_COOKIE_CHARS = 4 * 1024 * 1024
// What a signed cookie's entry holds besides the cookie: id, key and bookkeeping.
const SIGNED_ENTRY_CHARS = 150

/** What every session of one plugin registration shares. */
export interface SessionContext {
  options: ResolvedOptions
  /** The server-side store, with every failure turned into FST_SESS_STORE_UNAVAILABLE. */
  store: GuardedStore
  /** Set when the session lives sealed in the cookie; `store` is then never used. */
  stateless: StatelessCookie | undefined
  /** Seals cookies (stateless store) and records (encryptAtRest); undefined when neither is on. */
  sealer: Sealer | undefined
  signer: CookieSigner
  /** Signed cookies verified or issued lately (server-side stores). */
  signed: RecentCookies<SignedCookie>
  queue: KeyedQueue
  /** The session cookie's attributes when no response changes them. */
  attributes: DefaultAttributes
}

/** Where sealed record data sits in `SessionRecord.data` under `encryptAtRest`. */
export const SEALED_FIELD = 'sealed'

function unavailable (err: unknown): never {
  if (err instanceof StoreUnavailableError) throw err
  throw new StoreUnavailableError(err instanceof Error ? err.message : String(err), { cause: err })
}

function guard (store: SessionStore): GuardedStore {
  const touch = store.touch
  return {
    get: (key) => store.get(key).catch(unavailable),
    set: (key, record, expected) => store.set(key, record, expected).catch(unavailable),
    destroy: (key) => store.destroy(key).catch(unavailable),
    touch: touch === undefined ? undefined : (key, expiresAt) => touch.call(store, key, expiresAt).catch(unavailable)
  }
}

// The record's key is the authenticated context, so sealed data moved to another
// key (by anyone who can write to the store) no longer opens.
function recordContext (key: string): string {
  return 'record:' + key
}

async function openRecord (sealer: Sealer, key: string, record: SessionRecord): Promise<SessionRecord | undefined> {
  const sealed = record.data[SEALED_FIELD]
  // A plaintext record is refused: accepting one would let a store writer forge data.
  if (typeof sealed !== 'string') return undefined
  const opened = await sealer.unseal(recordContext(key), sealed)
  if (!opened.ok) return undefined
  return { ...record, data: parseJson(opened.plaintext.toString('utf8')) as Record<string, unknown> }
}

/** Seals each record's data before the store sees it; the version and times stay readable for the store. */
function encryptAtRest (store: GuardedStore, sealer: Sealer): GuardedStore {
  return {
    ...store,
    get: async (key) => {
      const record = await store.get(key)
      return record === undefined ? undefined : openRecord(sealer, key, record)
    },
    set: async (key, record, expected) => {
      const sealed = await sealer.seal(recordContext(key), JSON.stringify(record.data))
      return store.set(key, { ...record, data: { [SEALED_FIELD]: sealed } }, expected)
    }
  }
}

function serverStore (options: ResolvedOptions, sealer: Sealer | undefined): GuardedStore {
  const guarded = guard(options.store as SessionStore)
  return options.encryptAtRest ? encryptAtRest(guarded, sealer as Sealer) : guarded
}

export function createContext (options: ResolvedOptions, onPoolError: (error: unknown) => void): SessionContext {
  const codec = 'stateless' in options.store && options.store.stateless ? options.store : undefined
  const sealer = codec !== undefined || options.encryptAtRest
    ? new Sealer({ secret: options.secrets, ...options.crypto, onPoolError })
    : undefined
  return {
    options,
    store: serverStore(options, sealer),
    stateless: codec === undefined ? undefined : { codec, sealer: sealer as Sealer, opened: new RecentCookies(RECENT_COOKIE_CHARS, (o) => o.payload.length) },
    sealer,
    signer: new CookieSigner(options.secrets),
    signed: new RecentCookies(RECENT_COOKIE_CHARS, () => SIGNED_ENTRY_CHARS),
    queue: new KeyedQueue(),
    attributes: defaultAttributes(options.cookie)
  }
}

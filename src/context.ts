import { CookieSigner } from './crypto/signer'
import { StoreUnavailableError } from './errors'
import type { ResolvedOptions } from './options'
import { KeyedQueue } from './queue'
import type { SessionStore } from './store'

/** What every session of one plugin registration shares. */
export interface SessionContext {
  options: ResolvedOptions
  /** The user's store, with every failure turned into FST_SESS_STORE_UNAVAILABLE. */
  store: Required<Pick<SessionStore, 'get' | 'set' | 'destroy'>> & Pick<SessionStore, 'touch'>
  signer: CookieSigner
  queue: KeyedQueue
}

function unavailable (err: unknown): never {
  if (err instanceof StoreUnavailableError) throw err
  throw new StoreUnavailableError(err instanceof Error ? err.message : String(err), { cause: err })
}

function guard (store: SessionStore): SessionContext['store'] {
  const touch = store.touch
  return {
    get: (key) => store.get(key).catch(unavailable),
    set: (key, record, expected) => store.set(key, record, expected).catch(unavailable),
    destroy: (key) => store.destroy(key).catch(unavailable),
    touch: touch === undefined ? undefined : (key, expiresAt) => touch.call(store, key, expiresAt).catch(unavailable)
  }
}

export function createContext (options: ResolvedOptions): SessionContext {
  return {
    options,
    store: guard(options.store),
    signer: new CookieSigner(options.secrets),
    queue: new KeyedQueue()
  }
}

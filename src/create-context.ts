import type { Backend } from './backends/backend'
import { CookieBackend } from './backends/cookie-backend'
import { StoreBackend } from './backends/store-backend'
import { defaultAttributes } from './cookie-line'
import { Sealer } from './crypto/sealer'
import { CookieSigner } from './crypto/signer'
import { GuardedStore } from './guarded-store'
import type { ResolvedOptions } from './options'
import type { SessionContext } from './session'
import type { SessionStore, StatelessStore } from './store'
import { randomBackoff } from './write-record'

/** What one registration builds once: the sessions' shared context, and how to release it. */
export interface Registration {
  ctx: SessionContext
  /**
   * Stops what the registration started: the crypto worker pool (no thread is left behind)
   * and the default MemoryStore it created. A store the user gave is theirs to close.
   */
  close (): Promise<void>
}

function isStateless (store: SessionStore | StatelessStore): store is StatelessStore {
  return 'stateless' in store && store.stateless
}

// The one place that looks at what kind of store it was given: a declared capability, not a class.
function createBackend (options: ResolvedOptions, sealer: Sealer | undefined): Backend {
  const { store } = options
  if (isStateless(store)) return new CookieBackend(options, store, sealer as Sealer)
  const guarded = new GuardedStore(store, options.storeTimeoutMs)
  return new StoreBackend(options, guarded, new CookieSigner(options.secrets), options.encryptAtRest ? sealer : undefined)
}

export function createContext (options: ResolvedOptions, onPoolError: (error: unknown) => void): Registration {
  const sealer = isStateless(options.store) || options.encryptAtRest
    ? new Sealer({ secret: options.secrets, ...options.crypto, onPoolError })
    : undefined
  const backend = createBackend(options, sealer)
  const ctx = { options, backend, backoff: randomBackoff, attributes: defaultAttributes(options.cookie) }
  const close = async (): Promise<void> => {
    await sealer?.destroy()
    if (options.ownsStore) await options.store.close?.()
  }
  return { ctx, close }
}


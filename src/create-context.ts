import type { Backend } from './backends/backend'
import { CookieBackend } from './backends/cookie-backend'
import { StoreBackend } from './backends/store-backend'
import { defaultAttributes } from './cookie-line'
import { CsrfTokens } from './crypto/csrf-tokens'
import { Sealer } from './crypto/sealer'
import { CookieSigner } from './crypto/signer'
import { GuardedStore } from './guarded-store'
import { isStateless, type ResolvedOptions } from './options'
import { Revocations, Stamps } from './revocations'
import type { SessionContext } from './session'
import { randomBackoff } from './write-record'

/** What one registration builds once: the sessions' shared context, and how to release it. */
export interface Registration {
  ctx: SessionContext
  /**
   * Stops what the registration started: the crypto worker pool (no thread is left behind)
   * and the default MemoryStore it created. A store the user gave is theirs to close.
   */
  close (): Promise<void>
  /** What the operator should know about the configuration, logged once at registration. */
  warnings: string[]
}

/**
 * A store may declare `compareAndSet: 'process'`: its compare-and-set holds between the calls
 * of this process only (an express-session store through fromExpressStore, which reads,
 * compares and writes).
 */
interface DeclaredCompareAndSet {
  readonly compareAndSet?: unknown
}

const PROCESS_ONLY_WARNING = 'fastify-sessions: the store compares versions within this process only ' +
  '(an express-session store through fromExpressStore): two processes writing one session can lose ' +
  "each other's writes; use a native store (RedisStore, PostgresStore, …) when several processes share sessions"

// A sealed cookie's revocation stamps are written to the server-side store it names.
function warningsFor ({ store }: ResolvedOptions): string[] {
  const serverSide = (isStateless(store) ? store.revocations : store) as DeclaredCompareAndSet | undefined
  return serverSide?.compareAndSet === 'process' ? [PROCESS_ONLY_WARNING] : []
}

// The one place that looks at what kind of store it was given: declared capabilities, not
// classes. A sealed cookie is revoked by stamps in the store it names; a server-side store
// by its per-user index, or by stamps kept in it when it has none.
function createBackend (options: ResolvedOptions, sealer: Sealer | undefined): { backend: Backend, revocations: Revocations } {
  const { store } = options
  const stampsIn = (guarded: GuardedStore, cacheMs: number): Stamps => new Stamps(guarded, options.absoluteMs, cacheMs)
  if (isStateless(store)) {
    const backend = new CookieBackend(options, store, sealer as Sealer)
    const kept = store.revocations === undefined || options.users === undefined
      ? undefined
      : stampsIn(new GuardedStore(store.revocations, options.storeTimeoutMs), (store.revocationCache ?? 0) * 1000)
    return { backend, revocations: new Revocations(options, undefined, kept) }
  }
  const guarded = new GuardedStore(store, options.storeTimeoutMs)
  const backend = new StoreBackend(options, guarded, new CookieSigner(options.secrets, options.cookieName), options.encryptAtRest ? sealer : undefined)
  if (options.users === undefined) return { backend, revocations: new Revocations(options, undefined, undefined) }
  const revocations = guarded.indexesUsers
    ? new Revocations(options, backend, undefined)
    : new Revocations(options, undefined, stampsIn(guarded, 0))
  return { backend, revocations }
}

export function createContext (options: ResolvedOptions, onPoolError: (error: unknown) => void): Registration {
  const sealer = isStateless(options.store) || options.encryptAtRest
    ? new Sealer({ secret: options.secrets, ...options.crypto, onPoolError })
    : undefined
  const { backend, revocations } = createBackend(options, sealer)
  const csrfTokens = new CsrfTokens(options.secrets)
  const ctx = { options, backend, revocations, csrfTokens, backoff: randomBackoff, attributes: defaultAttributes(options.cookie) }
  const close = async (): Promise<void> => {
    await sealer?.destroy()
    if (options.ownsStore) await options.store.close?.()
  }
  return { ctx, close, warnings: warningsFor(options) }
}

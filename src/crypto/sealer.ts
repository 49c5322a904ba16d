import { KeyRing } from './key-ring'
import { CryptoPool } from './pool'
import { checkContext, checkSealArguments, seal, unseal, type Unsealed } from './seal'

export type OffloadMode = 'never' | 'always' | 'auto'

export interface SealerOptions {
  /** A secret or a list (first = current), or a ring built from one. */
  secret: string | readonly string[] | KeyRing
  /** Where the AES work runs. Default 'never' (see docs/crypto.md for the numbers). */
  offload?: OffloadMode
  /** Worker threads when the pool is used. Default 1. */
  threads?: number
  /** 'auto' offloads payloads of at least this many bytes (characters for strings). */
  autoMinBytes?: number
  /** Told when the pool fails and a job falls back to running inline. */
  onPoolError?: (error: unknown) => void
}

// From benchmarks/crypto.mjs (docs/crypto.md has the table): on 2 cores under Node 20,
// with 1 or 2 threads, the pool never beat inline, at any size from 200 B to 1 MB or
// any concurrency. Copying strings to and from a worker costs the main thread about as
// much as AES-GCM itself (~4 ms per MB either way), so 'auto' offloads only payloads
// larger than anything measured, and only to an idle thread.
export const AUTO_MIN_BYTES = 2 * 1024 * 1024

function sizeOf (value: string | Uint8Array): number {
  return typeof value === 'string' ? value.length : value.byteLength
}

/**
 * The front the plugin uses: same results whether jobs run inline or on the pool,
 * and every mode opens what any other mode sealed.
 */
export class Sealer {
  #ring: KeyRing
  #mode: OffloadMode
  #pool: CryptoPool | undefined
  #onPoolError: (error: unknown) => void
  #autoMinBytes: number

  constructor (options: SealerOptions) {
    this.#ring = options.secret instanceof KeyRing ? options.secret : new KeyRing(options.secret)
    this.#mode = options.offload ?? 'never'
    if (!['never', 'always', 'auto'].includes(this.#mode)) throw new TypeError("Sealer: offload must be 'never', 'always' or 'auto'")
    // The pool object is cheap: its threads start on the first offloaded job only.
    if (this.#mode !== 'never') this.#pool = new CryptoPool(this.#ring, { threads: options.threads })
    this.#onPoolError = options.onPoolError ?? (() => {})
    this.#autoMinBytes = options.autoMinBytes ?? AUTO_MIN_BYTES
  }

  get ring (): KeyRing {
    return this.#ring
  }

  get offload (): OffloadMode {
    return this.#mode
  }

  /** The pool behind 'always' and 'auto' (undefined for 'never' and after destroy()). */
  get pool (): CryptoPool | undefined {
    return this.#pool
  }

  /**
   * Seals on this thread, now, when the job would run inline anyway; undefined when it
   * belongs on the pool (then call seal()). Spares the common case a promise.
   */
  sealInline (context: string, plaintext: string | Uint8Array): string | undefined {
    checkSealArguments(context, plaintext)
    return this.#choose(sizeOf(plaintext)) === undefined ? seal(this.#ring, context, plaintext) : undefined
  }

  /** Like sealInline(), for unseal(). */
  unsealInline (context: string, sealed: string): Unsealed | undefined {
    checkContext(context)
    return this.#choose(typeof sealed === 'string' ? sealed.length : 0) === undefined ? unseal(this.#ring, context, sealed) : undefined
  }

  async seal (context: string, plaintext: string | Uint8Array): Promise<string> {
    const sealed = this.sealInline(context, plaintext)
    if (sealed !== undefined) return sealed
    // sealInline() declined: the job belongs on the pool, which therefore exists.
    return (this.#pool as CryptoPool).seal(context, plaintext).catch((error: unknown) => {
      this.#onPoolError(error)
      return seal(this.#ring, context, plaintext)
    })
  }

  async unseal (context: string, sealed: string): Promise<Unsealed> {
    const opened = this.unsealInline(context, sealed)
    if (opened !== undefined) return opened
    return (this.#pool as CryptoPool).unseal(context, sealed).catch((error: unknown) => {
      this.#onPoolError(error)
      return unseal(this.#ring, context, sealed)
    })
  }

  /** Stops the pool's threads; later jobs run inline. */
  async destroy (): Promise<void> {
    const pool = this.#pool
    this.#pool = undefined
    await pool?.destroy()
  }

  #choose (bytes: number): CryptoPool | undefined {
    const pool = this.#pool
    if (pool === undefined || this.#mode === 'always') return pool
    // A busy pool only adds queueing to copying that already costs as much as the AES.
    return bytes >= this.#autoMinBytes && pool.pending < pool.threads ? pool : undefined
  }
}

import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { Piscina } from 'piscina'
import type { KeyRing } from './key-ring'
import { checkContext, checkSealArguments, type Unsealed } from './seal'
import type { Job, JobResult, Task } from './worker'

export interface CryptoPoolOptions {
  /** Worker threads, started together on the first job. Default 1. */
  threads?: number
}

/**
 * Compiled code finds dist/crypto/worker.js next to this file. Running the .ts
 * sources (tests under ts-node) there is no .js, so the worker runs worker.ts:
 * worker threads inherit the parent's execArgv, which carries the TypeScript
 * loader (`--import …/ts-node…`) that let this very file load.
 */
export function workerFilename (dir: string = __dirname): string {
  const compiled = join(dir, 'worker.js')
  return existsSync(compiled) ? compiled : join(dir, 'worker.ts')
}

function checkThreads (threads: unknown): number {
  if (threads === undefined) return 1
  if (typeof threads !== 'number' || !Number.isInteger(threads) || threads < 1) {
    throw new TypeError('CryptoPool: threads must be a positive integer')
  }
  return threads
}

// Jobs are checked before they are posted, so the worker never answers 'invalid job' here.
// Structured clone turns Buffers into plain Uint8Arrays; give callers a Buffer view, no copy.
function revive (result: JobResult): Unsealed {
  if (!result.ok || !('plaintext' in result)) return result as Unsealed
  const { plaintext } = result
  return { ...result, plaintext: Buffer.from(plaintext.buffer, plaintext.byteOffset, plaintext.byteLength) }
}

function sealedOf (result: JobResult): string {
  return (result as { sealed: string }).sealed
}

const MALFORMED: Unsealed = { ok: false, reason: 'malformed' }

/**
 * Seals and unseals on a piscina pool. Nothing starts until the first job; after
 * `destroy()` no thread is left, so the process can exit. Bad sealed values resolve
 * to a reason like the inline functions; only programming errors and a broken pool reject.
 */
export class CryptoPool {
  #ring: KeyRing
  #threads: number
  #piscina: Piscina<Task, JobResult | JobResult[]> | undefined
  #pending = 0
  #destroyed = false

  constructor (ring: KeyRing, options: CryptoPoolOptions = {}) {
    this.#ring = ring
    this.#threads = checkThreads(options.threads)
  }

  /** Whether the threads have been started (the first job starts them). */
  get started (): boolean {
    return this.#piscina !== undefined
  }

  /** Threads currently alive; 0 before the first job and after destroy(). */
  get threadCount (): number {
    return this.#piscina?.threads.length ?? 0
  }

  /** The configured number of threads. */
  get threads (): number {
    return this.#threads
  }

  /** Jobs submitted and not yet answered, queued or running. */
  get pending (): number {
    return this.#pending
  }

  async seal (context: string, plaintext: string | Uint8Array): Promise<string> {
    checkSealArguments(context, plaintext)
    return sealedOf(await this.#run({ op: 'seal', context, plaintext }) as JobResult)
  }

  async unseal (context: string, sealed: string): Promise<Unsealed> {
    checkContext(context)
    // Values structured clone cannot carry must not reach postMessage.
    if (typeof sealed !== 'string') return MALFORMED
    return revive(await this.#run({ op: 'unseal', context, sealed }) as JobResult)
  }

  /** Seals many values in one message: cheaper per value when values are small. */
  async sealMany (context: string, plaintexts: ReadonlyArray<string | Uint8Array>): Promise<string[]> {
    plaintexts.forEach((plaintext) => checkSealArguments(context, plaintext))
    const jobs: Job[] = plaintexts.map((plaintext) => ({ op: 'seal', context, plaintext }))
    return (await this.#run(jobs) as JobResult[]).map(sealedOf)
  }

  async unsealMany (context: string, values: readonly string[]): Promise<Unsealed[]> {
    checkContext(context)
    const jobs: Job[] = values.map((sealed) => ({ op: 'unseal', context, sealed: typeof sealed === 'string' ? sealed : '' }))
    return (await this.#run(jobs) as JobResult[]).map(revive)
  }

  /** Terminates every thread; jobs still running reject. Later jobs reject too. */
  async destroy (): Promise<void> {
    this.#destroyed = true
    const piscina = this.#piscina
    this.#piscina = undefined
    await piscina?.destroy()
  }

  async #run (task: Task): Promise<JobResult | JobResult[]> {
    if (this.#destroyed) throw new Error('CryptoPool: used after destroy()')
    this.#pending++
    try {
      return await this.#start().run(task)
    } finally {
      this.#pending--
    }
  }

  #start (): Piscina<Task, JobResult | JobResult[]> {
    this.#piscina ??= new Piscina({
      filename: workerFilename(),
      minThreads: this.#threads,
      maxThreads: this.#threads,
      workerData: this.#ring.material()
    })
    return this.#piscina
  }
}

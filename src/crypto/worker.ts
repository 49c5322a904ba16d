import { workerData } from 'node:worker_threads'
import { move, transferableSymbol, valueSymbol } from 'piscina'
import { KeyRing, type KeyRingMaterial } from './key-ring'
import { seal, unseal, type Unsealed } from './seal'

// The piscina worker. The pool passes the ring's material as workerData once, at
// thread start; keys are never derived or sent again per job.

export type Job =
  | { op: 'seal', context: string, plaintext: string | Uint8Array }
  | { op: 'unseal', context: string, sealed: string }

export type JobResult = { ok: true, sealed: string } | Unsealed | { ok: false, reason: 'invalid job' }

/** A task is one job or a batch of jobs (one message for many small jobs). */
export type Task = Job | Job[]

const INVALID: JobResult = { ok: false, reason: 'invalid job' }

function isJob (value: unknown): value is Job {
  const job = value as Partial<Record<string, unknown>> | null
  if (typeof job !== 'object' || job === null || typeof job.context !== 'string') return false
  if (job.op === 'unseal') return true
  return job.op === 'seal' && (typeof job.plaintext === 'string' || job.plaintext instanceof Uint8Array)
}

/** Runs jobs against one ring. Total: garbage gives 'invalid job', never a throw. */
export function createHandler (material: KeyRingMaterial): (task: unknown) => JobResult | JobResult[] {
  const ring = new KeyRing(material)
  const run = (job: unknown): JobResult => {
    if (!isJob(job)) return INVALID
    if (job.op === 'seal') return { ok: true, sealed: seal(ring, job.context, job.plaintext) }
    return unseal(ring, job.context, job.sealed)
  }
  return (task) => Array.isArray(task) ? task.map(run) : run(task)
}

let shared: ((task: unknown) => JobResult | JobResult[]) | undefined

// A plaintext that owns its whole memory (decipher output does) moves to the main
// thread instead of being copied: copying costs the main thread ~0.5 ms per MB here.
function movable (result: JobResult): ArrayBuffer[] {
  if (!result.ok || !('plaintext' in result)) return []
  const { buffer, byteOffset, byteLength } = result.plaintext
  return byteOffset === 0 && byteLength === buffer.byteLength ? [buffer as ArrayBuffer] : []
}

/** The memory that can move rather than be copied when `results` are posted back. */
export function transferOf (results: JobResult[]): ArrayBuffer[] {
  return results.flatMap(movable)
}

/** The entry piscina calls; the ring is built on the first task of each thread. */
export default function handle (task: unknown): unknown {
  shared ??= createHandler(workerData as KeyRingMaterial)
  const result = shared(task)
  const transfer = transferOf(Array.isArray(result) ? result : [result])
  return transfer.length === 0 ? result : move({ [transferableSymbol]: transfer, [valueSymbol]: result })
}

import { performance } from 'node:perf_hooks'

/** One pending bound: `expire` runs when its time is up, unless it was removed first. */
export interface Deadline {
  at: number
  expire: () => void
}

/**
 * Bounds work by one fixed timeout. Every bound has the same length, so they expire in the
 * order they were made: one timer, armed for the oldest, serves them all, instead of a
 * timer created and cleared per store call. Monotonic time, so a test that moves
 * `Date.now()` cannot expire them.
 */
export class Deadlines {
  readonly ms: number
  #pending = new Set<Deadline>()
  #timer: NodeJS.Timeout | undefined

  constructor (ms: number) {
    this.ms = ms
  }

  /** Starts a bound: `expire` runs once the timeout has passed, unless `remove()` came first. */
  add (expire: () => void): Deadline {
    const entry = { at: performance.now() + this.ms, expire }
    this.#pending.add(entry)
    this.#timer ??= setTimeout(() => this.#expire(), this.ms)
    return entry
  }

  // The timer is left to run out rather than cleared when nothing is pending: touching it on
  // every call (clearing, or ref and unref) was measured to cost microseconds per request.
  // It is not re-armed once nothing is pending, and stop() ends it at once.
  remove (entry: Deadline): void {
    this.#pending.delete(entry)
  }

  /** Ends the timer: nothing will be pending any more (the registration is closing). */
  stop (): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
  }

  /** Settles like `work`, or rejects with `expired()` once the timeout has passed. */
  bound<T> (work: Promise<T>, expired: () => Error): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const entry = this.add(() => reject(expired()))
      work.then((value) => {
        this.remove(entry)
        resolve(value)
      }, (err: unknown) => {
        this.remove(entry)
        reject(err)
      })
    })
  }

  #expire (): void {
    this.#timer = undefined
    const now = performance.now()
    for (const entry of this.#pending) {
      // Timers may fire a little early; a millisecond's grace avoids a second wake-up.
      if (entry.at > now + 1) {
        this.#timer = setTimeout(() => this.#expire(), entry.at - now)
        return
      }
      this.#pending.delete(entry)
      entry.expire()
    }
  }
}

import { performance } from 'node:perf_hooks'

interface Pending {
  at: number
  expire: () => void
}

/**
 * Bounds promises by one fixed timeout. Every bound has the same length, so they expire in
 * the order they were made: one timer, armed for the oldest, serves them all, instead of a
 * timer created and cleared per store call. Monotonic time, so a test that moves
 * `Date.now()` cannot expire them.
 */
export class Deadlines {
  readonly ms: number
  #pending = new Set<Pending>()
  #timer: NodeJS.Timeout | undefined

  constructor (ms: number) {
    this.ms = ms
  }

  /** Settles like `work`, or rejects with `expired()` once the timeout has passed. */
  bound<T> (work: Promise<T>, expired: () => Error): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const entry: Pending = { at: performance.now() + this.ms, expire: () => reject(expired()) }
      this.#add(entry)
      work.then((value) => {
        this.#settle(entry)
        resolve(value)
      }, (err: unknown) => {
        this.#settle(entry)
        reject(err)
      })
    })
  }

  #add (entry: Pending): void {
    this.#pending.add(entry)
    if (this.#timer === undefined) this.#timer = setTimeout(() => this.#expire(), this.ms)
    else this.#timer.ref()
  }

  // With nothing pending the timer is left to run out rather than cleared (cheaper under
  // load), but it must not keep a process alive that has nothing else to do.
  #settle (entry: Pending): void {
    this.#pending.delete(entry)
    if (this.#pending.size === 0) this.#timer?.unref()
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

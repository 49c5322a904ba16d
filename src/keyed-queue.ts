import type { MaybePromise } from './maybe-promise'

/**
 * Runs tasks for the same key one after another. Commits to one session from this
 * process then never race each other, so compare-and-set retries are only needed
 * between processes. A task must not wait for a later task of its own key (the session
 * refuses the calls that would): it would wait for itself.
 */
export class KeyedQueue {
  #tails = new Map<string, Promise<unknown>>()
  // Tasks of each key queued or running, for keys with two or more: a key with a tail and
  // no count has one. Most tasks run alone, and then cost this Map nothing.
  #counts = new Map<string, number>()
  #onIdle: (key: string) => void

  /** `onIdle` is told when a key has no task left. */
  constructor (onIdle: (key: string) => void = noop) {
    this.#onIdle = onIdle
  }

  run<T> (key: string, task: () => MaybePromise<T>): Promise<T> {
    const previous = this.#tails.get(key)
    const result = previous === undefined ? start(task) : previous.then(task, task)
    const tail = result.then(noop, noop)
    this.#tails.set(key, tail)
    if (previous !== undefined) this.#counts.set(key, (this.#counts.get(key) ?? 1) + 1)
    void tail.then(() => {
      if (this.#counts.size > 0) this.#finished(key)
      if (this.#tails.get(key) !== tail) return
      this.#tails.delete(key)
      this.#onIdle(key)
    })
    return result
  }

  /** Whether a task of `key` waits behind the one running. */
  waiting (key: string): boolean {
    return this.#counts.has(key)
  }

  #finished (key: string): void {
    const count = this.#counts.get(key)
    if (count === undefined) return
    if (count > 2) this.#counts.set(key, count - 1)
    else this.#counts.delete(key)
  }

  /** Whether a task of `key` is queued or running. */
  busy (key: string): boolean {
    return this.#tails.has(key)
  }

  /** Keys with a task queued or running. */
  get size (): number {
    return this.#tails.size
  }
}

/** Runs `task` now; what it throws becomes a rejection. */
export function start<T> (task: () => MaybePromise<T>): Promise<T> {
  try {
    return Promise.resolve(task())
  } catch (err) {
    return Promise.reject(err)
  }
}

function noop (): void {}

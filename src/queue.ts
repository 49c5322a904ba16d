/**
 * Runs tasks for the same key one after another. Commits to one session from this
 * process then never race each other, so compare-and-set retries are only needed
 * between processes.
 */
export class KeyedQueue {
  #tails = new Map<string, Promise<unknown>>()

  run<T> (key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key)
    const result = previous === undefined ? task() : previous.then(task, task)
    const tail = result.then(noop, noop)
    this.#tails.set(key, tail)
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key)
    })
    return result
  }

  /** Keys with a task queued or running. */
  get size (): number {
    return this.#tails.size
  }
}

function noop (): void {}

/** One pending bound: its timer, cleared when the work settles first. */
export type Deadline = NodeJS.Timeout

/**
 * Bounds work by one fixed timeout. Node keeps timers of one duration in one list, so a
 * timer per store call costs an insertion and a removal, not a scan; measured against one
 * shared timer and a set of pending calls, it was no dearer for a store in memory and
 * cheaper for one over the network.
 */
export class Deadlines {
  readonly ms: number

  constructor (ms: number) {
    this.ms = ms
  }

  /** Starts a bound: `expire` runs once the timeout has passed, unless `remove()` came first. */
  add (expire: () => void): Deadline {
    return setTimeout(expire, this.ms)
  }

  remove (deadline: Deadline): void {
    clearTimeout(deadline)
  }

  /** Settles like `work`, or rejects with `expired()` once the timeout has passed. */
  bound<T> (work: Promise<T>, expired: () => Error): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const deadline = this.add(() => reject(expired()))
      work.then((value) => {
        this.remove(deadline)
        resolve(value)
      }, (err: unknown) => {
        this.remove(deadline)
        reject(err)
      })
    })
  }
}

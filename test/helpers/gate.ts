/**
 * Holds a request inside its handler until the test lets it go, so races between
 * requests are arranged in a fixed order instead of by timers.
 */
export class Gate {
  #open!: () => void
  #arrive!: () => void
  #opened = new Promise<void>((resolve) => { this.#open = resolve })
  /** Resolves once a handler is waiting at the gate. */
  arrived = new Promise<void>((resolve) => { this.#arrive = resolve })

  /** Called by the handler: signals arrival, then waits for open(). */
  async wait (): Promise<void> {
    this.#arrive()
    await this.#opened
  }

  open (): void {
    this.#open()
  }
}

/** A fresh gate per race; handlers wait at whichever gate is current. */
export class Races {
  #gate = new Gate()

  wait (): Promise<void> {
    return this.#gate.wait()
  }

  /** Starts `held` (which waits at the gate), runs `other` to completion, then releases `held`. */
  async run<A, B> (held: () => Promise<A>, other: () => Promise<B>): Promise<[A, B]> {
    const gate = this.#gate = new Gate()
    const first = held()
    await gate.arrived
    const second = await other()
    gate.open()
    return [await first, second]
  }
}

/** Holds `count` handlers until every one of them has arrived: they all read the same copy before any commits. */
export class Barrier {
  #left: number
  #release!: () => void
  #released = new Promise<void>((resolve) => { this.#release = resolve })

  constructor (count: number) {
    this.#left = count
  }

  async wait (): Promise<void> {
    if (--this.#left === 0) this.#release()
    await this.#released
  }
}

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

/**
 * Holds handlers until the expected number of them are waiting, then lets them all go at
 * once: every request of a burst has loaded its session before any of them commits, the
 * most overlap concurrent requests can have, every run alike. Waits with no burst expected
 * pass straight through.
 */
export class Barrier {
  #expected = 0
  #waiting = 0
  #release: () => void = () => {}
  #released = Promise.resolve()

  /** With a count: expects that many waits at once. */
  constructor (count = 0) {
    if (count > 0) this.expect(count)
  }

  /** Holds the next `count` waits until the last of them arrives. */
  expect (count: number): void {
    this.#expected = count
    this.#waiting = 0
    this.#released = new Promise<void>((resolve) => { this.#release = resolve })
  }

  wait (): Promise<void> {
    if (this.#expected === 0) return Promise.resolve()
    const released = this.#released
    if (++this.#waiting === this.#expected) {
      this.#expected = 0
      this.#release()
    }
    return released
  }
}

import { setTimeout as sleep } from 'node:timers/promises'

/** How time passes for the store during one case. */
export interface Clock {
  /** Lifetime, in ms, of the records a case lets expire. */
  readonly lifetimeMs: number
  /** Lets `lifetimeMs` and a little more pass for the store. */
  pass (): Promise<void>
  /** Gives time back to the process. */
  stop (): void
}

// Far longer than any case really runs, so that a record meant to be live until the clock
// moves is still live on a slow machine.
const FAKE_LIFETIME_MS = 60_000

/** How long past an expiry a record is given to disappear when the suite waits for real. */
export const REAL_MARGIN_MS = 250

// Date.now is one for the whole process: two cases moving it at once would move each
// other's records, so a second fake clock is refused rather than shared.
let fakeClockRunning = false

/**
 * Replaces Date.now with one that runs with real time plus an offset that `pass()` moves
 * forward; `stop()` puts back whatever Date.now was before.
 */
export function fakeClock (): Clock {
  if (fakeClockRunning) {
    throw new Error("another case holds the fake clock: run the cases one at a time (node:test and tap do by default) or use clock: 'server'")
  }
  const before = Date.now
  let offsetMs = 0
  Date.now = () => before() + offsetMs
  fakeClockRunning = true
  return {
    lifetimeMs: FAKE_LIFETIME_MS,
    async pass () { offsetMs += FAKE_LIFETIME_MS + 1 },
    stop () {
      Date.now = before
      fakeClockRunning = false
    }
  }
}

/** The backend's own clock ends records: the suite waits, the only real waits it makes. */
export function serverClock (lifetimeMs: number): Clock {
  return {
    lifetimeMs,
    pass: () => sleep(lifetimeMs + REAL_MARGIN_MS),
    stop () {}
  }
}

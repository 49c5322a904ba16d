/** A timer the test holds: it runs when the test calls `run()`. */
export interface HeldTimer {
  run: () => Promise<void>
  ms: number
  unref: boolean
  timer: object
}

/**
 * Holds the long timers a store starts for its background passes (100 s and more); every
 * shorter timeout runs as usual. `cleared` collects what clearTimeout was given.
 */
export function heldTimers (t: tap.Test): { started: HeldTimer[], cleared: unknown[] } {
  const started: HeldTimer[] = []
  const cleared: unknown[] = []
  const realSet = globalThis.setTimeout
  const realClear = globalThis.clearTimeout
  t.capture(globalThis, 'setTimeout', ((run: () => Promise<void>, ms: number, ...rest: unknown[]) => {
    if (ms < 100_000) return (realSet as (...args: unknown[]) => unknown)(run, ms, ...rest)
    const timer = { unref: () => { held.unref = true; return timer } }
    const held = { run, ms, unref: false, timer }
    started.push(held)
    return timer
  }) as unknown as typeof setTimeout)
  t.capture(globalThis, 'clearTimeout', ((timer: unknown) => {
    cleared.push(timer)
    realClear(timer as NodeJS.Timeout)
  }) as typeof clearTimeout)
  return { started, cleared }
}

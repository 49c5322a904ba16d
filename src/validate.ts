import type { SessionStore } from './store'
import { ExpressStoreError, InvalidOptionError } from './errors'

// The option validators of the plugin and of every store: one style, one error. `name` is
// what the error names (`cookie.maxAge`, `MemoryStore max`). Each returns the value, or the
// fallback when the value is undefined; none has a side effect.

// setTimeout cannot wait longer than this many seconds (2^31 - 1 ms).
export const MAX_TIMER_SECONDS = 2_147_483

/**
 * A randomized wait of `ms` times 0.5 to 1.5 (so that processes started together spread
 * out), cut to what setTimeout can hold: it runs a longer delay after 1 ms instead, and
 * the longest interval the options accept, drawn up to one and a half times, is longer.
 */
export function spreadDelay (ms: number): number {
  return Math.min(ms * (0.5 + Math.random()), 2 ** 31 - 1)
}
// Browsers cap a cookie's lifetime at 400 days; a longer one is a mistake, most often
// milliseconds given where seconds are meant.
export const MAX_COOKIE_SECONDS = 400 * 86_400

export function fail (name: string, reason: string): never {
  throw new InvalidOptionError(name, reason)
}

export function plainObject (name: string, value: unknown): Record<string, unknown> {
  if (value === undefined) return {}
  if (value === null || typeof value !== 'object' || Array.isArray(value)) fail(name, 'must be an object')
  return value as Record<string, unknown>
}

export function bool (name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') fail(name, 'must be a boolean')
  return value
}

export function oneOf<T extends string> (name: string, value: unknown, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback
  if (!allowed.includes(value as T)) fail(name, `must be one of ${allowed.map((a) => `'${a}'`).join(', ')}`)
  return value as T
}

export function integer (name: string, value: unknown, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    fail(name, `must be an integer from ${min} to ${max}`)
  }
  return value
}

/** A positive number of seconds, at most `max`; past it the likely mistake is milliseconds. */
export function seconds<F extends number | undefined> (name: string, value: unknown, fallback: F, max = MAX_TIMER_SECONDS): number | F {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) fail(name, 'must be a positive number of seconds')
  if (value > max) fail(name, `must be at most ${max} seconds; durations are in seconds, not milliseconds`)
  return value
}

/** An object whose listed members are functions (the optional ones when present). */
export function methods (name: string, value: unknown, required: readonly string[], optional: readonly string[] = []): Record<string, unknown> {
  if (value === null || typeof value !== 'object') fail(name, `must be an object with ${required.map((m) => `${m}()`).join(', ')}`)
  const candidate = value as Record<string, unknown>
  for (const method of required) {
    if (typeof candidate[method] !== 'function') fail(name, `is missing the method ${method}()`)
  }
  for (const method of optional) {
    if (candidate[method] !== undefined && typeof candidate[method] !== 'function') fail(name, `${method} must be a function when present`)
  }
  return candidate
}

/**
 * Refuses option names it does not know, so a typo (`absoluteTimout`) cannot silently
 * weaken security. Suggests the closest known name, or says what to use instead for names
 * other session libraries use (`hints`).
 */
export function knownKeys (
  prefix: string, given: Record<string, unknown>, known: readonly string[], hints: Readonly<Record<string, string>> = {}
): void {
  for (const key of Object.keys(given)) {
    if (known.includes(key)) continue
    const hint = Object.hasOwn(hints, key) ? hints[key] : suggestion(key, known)
    fail(prefix + key, `is not a known option${hint === undefined ? '' : `; ${hint}`}`)
  }
}

function suggestion (key: string, known: readonly string[]): string | undefined {
  let best: string | undefined
  let bestDistance = 3
  for (const name of known) {
    const distance = editDistance(key.toLowerCase(), name.toLowerCase())
    if (distance < bestDistance) [best, bestDistance] = [name, distance]
  }
  return best === undefined ? undefined : `did you mean "${best}"?`
}

// Levenshtein distance: names are short, so the plain table is enough.
function editDistance (a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    previous = current
  }
  return previous[b.length]
}

/** A server-side store: the contract's methods, and the per-user index whole or not at all. */
export function sessionStore (name: string, value: unknown): SessionStore {
  const given = methods(name, value, ['get', 'set', 'destroy'], ['touch', 'close', 'listUser', 'destroyUser'])
  if ((given.listUser === undefined) !== (given.destroyUser === undefined)) {
    fail(name, 'must have both listUser() and destroyUser() or neither')
  }
  // It would pass every check above and fail at its first write, leaving a record behind.
  if (callbackStore(given)) throw new ExpressStoreError(name)
  return value as SessionStore
}

/**
 * Whether a store is an express-session one, whose methods call back instead of returning a
 * promise: it has the methods express-session's `Store` adds (connect-redis, connect-pg-simple
 * and memorystore all extend it), or its `get()` and `destroy()` take a callback.
 */
export function callbackStore (store: Record<string, unknown>): boolean {
  if (typeof store.createSession === 'function' && typeof store.regenerate === 'function') return true
  return (store.get as () => unknown).length >= 2 && (store.destroy as () => unknown).length >= 2
}

import { NotSerializableError } from './errors'

/**
 * Reads what `JSON.stringify` wrote. `JSON.parse` defines every key as an own data
 * property and never assigns through a prototype setter, so a value holding its own
 * `__proto__` or `constructor` key reads back exactly as it was set, and no prototype is
 * touched. (A parser that refuses or strips those keys would make such a value unreadable,
 * which is how a cross-site link could lock a user out of their session.)
 */
export function parseJson (text: string): unknown {
  return JSON.parse(text)
}

/** The JSON of a session value; throws FST_SESS_NOT_SERIALIZABLE naming the key. */
export function toJson (key: string, value: unknown): string {
  const kind = typeof value
  if (kind === 'bigint' || kind === 'function' || kind === 'symbol') {
    throw new NotSerializableError(key, `a ${kind} has no JSON form`)
  }
  try {
    return JSON.stringify(value)
  } catch (err) {
    throw new NotSerializableError(key, (err as Error).message)
  }
}

function isPrimitive (value: unknown): boolean {
  const kind = typeof value
  return value === null || kind === 'string' || kind === 'boolean' || (kind === 'number' && Number.isFinite(value))
}

/**
 * Whether `value` is a string, finite number, boolean or null, or an array or plain object of
 * those with no toJSON of its own: such a value always has a JSON form, and holds nothing that
 * can change in place but its own entries. Walking it is cheaper than writing its JSON.
 */
export function isFlatJson (value: unknown): boolean {
  if (isPrimitive(value)) return true
  if (value === null || typeof value !== 'object' || (value as { toJSON?: unknown }).toJSON !== undefined) return false
  if (Array.isArray(value)) return value.every(isPrimitive)
  const proto = Object.getPrototypeOf(value)
  if (proto !== Object.prototype && proto !== null) return false
  for (const key in value) if (!isPrimitive((value as Record<string, unknown>)[key])) return false
  return true
}

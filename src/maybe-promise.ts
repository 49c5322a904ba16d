/** A value now, or a promise of it: the result of work that only sometimes waits. */
export type MaybePromise<T> = T | Promise<T>

/**
 * Continues with `fn` now when `value` is ready, later when it is a promise. Most requests
 * load and commit without waiting (a remembered cookie, an inline seal, nothing to write):
 * measured, sparing them a promise per step is worth a share of the plugin's overhead.
 */
export function then<T, U> (value: MaybePromise<T>, fn: (value: T) => MaybePromise<U>): MaybePromise<U> {
  return value instanceof Promise ? value.then(fn) : fn(value)
}

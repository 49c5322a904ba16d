import { tracingChannel, type TracingChannel } from 'node:diagnostics_channel'
import type { MaybePromise } from './maybe-promise'

/**
 * The names of the plugin's tracing channels (`diagnostics_channel.tracingChannel(name)`):
 * each publishes `start`, `end`, and for work that waits `asyncStart` and `asyncEnd`, with
 * `error` when it fails, on `tracing:<name>:<event>`.
 */
export const tracingChannels = {
  /** A request's session cookie turned into a session (or refused). */
  load: 'fastify-sessions:load',
  /** A session committed: at the end of the request, by save(), or by update(). */
  commit: 'fastify-sessions:commit',
  /** One call to the store the application gave. */
  store: 'fastify-sessions:store'
} as const

/** What every message has. Messages never hold a session id, a store key, a cookie or session data. */
export interface TraceMessage {
  /** The store's class name (`MemoryStore`, `CookieStore`, `Object` for a plain object). */
  store: string
  /**
   * False when the work finished without waiting: `end` is then its last event. True once it
   * waits (set before `end`): `asyncStart` and `asyncEnd` follow when it settles.
   */
  async: boolean
  /** What failed, set before `error` is published; the error the request sees. */
  error?: unknown
}

export interface LoadTrace extends TraceMessage {
  /**
   * `found`: the cookie's session was loaded. `fresh`: the request had no session cookie.
   * `refused`: the cookie was not accepted (see `reason`), a fresh session follows.
   * Undefined when the load failed (`error`).
   */
  outcome: 'found' | 'fresh' | 'refused' | undefined
  /** Why the cookie was refused, as the debug and warn log lines say it. */
  reason: string | undefined
}

export interface CommitTrace extends TraceMessage {
  /** `end`: the automatic commit in onSend; `save`: save(); `update`: update(). */
  trigger: 'end' | 'save' | 'update'
  /**
   * `written`: the record was stored (or the sealed cookie re-sealed). `touched`: only its
   * expiry moved. `nothing`: no write was needed. Undefined when the commit failed.
   */
  outcome: 'written' | 'touched' | 'nothing' | undefined
  /** Compare-and-set attempts that lost to another request's write (each one is retried or ends the commit). */
  conflicts: number
}

/** The store method called, by its name in the store contract. */
export type StoreOperation = 'get' | 'set' | 'touch' | 'destroy' | 'listUser' | 'destroyUser'

export interface StoreTrace extends TraceMessage {
  operation: StoreOperation
}

// diagnostics_channel keeps channels by name for the whole process: these are the same
// objects a subscriber gets, whichever registration publishes.
export const loadChannel: TracingChannel<unknown, LoadTrace> = tracingChannel(tracingChannels.load)
export const commitChannel: TracingChannel<unknown, CommitTrace> = tracingChannel(tracingChannels.commit)
export const storeChannel: TracingChannel<unknown, StoreTrace> = tracingChannel(tracingChannels.store)

/** The name a message gives a store: its class. */
export function storeName (store: object): string {
  return (store.constructor as { name?: string } | undefined)?.name ?? 'Object'
}

/**
 * Runs `fn` as one traced operation. Untouched when nobody subscribes. Otherwise like
 * `traceSync` when `fn` returns a value (start, end) and like `tracePromise` when it returns
 * a promise (start, end, asyncStart, asyncEnd), so a synchronous fast path stays synchronous
 * for subscribers too; `error` comes before `end` or `asyncStart`. `fn` runs inside
 * `start.runStores`, so subscribers' bound stores (bindStore) see the work it starts.
 */
export function traced<M extends TraceMessage, T> (channel: TracingChannel<unknown, M>, message: M, fn: () => MaybePromise<T>): MaybePromise<T> {
  if (!channel.hasSubscribers) return fn()
  return channel.start.runStores(message, run, undefined, channel, message, fn)
}

function run<M extends TraceMessage, T> (channel: TracingChannel<unknown, M>, message: M, fn: () => MaybePromise<T>): MaybePromise<T> {
  let result: MaybePromise<T>
  try {
    result = fn()
  } catch (err) {
    failed(channel, message, err)
    channel.end.publish(message)
    throw err
  }
  if (!(result instanceof Promise)) {
    channel.end.publish(message)
    return result
  }
  message.async = true
  channel.end.publish(message)
  return result.then((value) => {
    settled(channel, message)
    return value
  }, (err: unknown) => {
    failed(channel, message, err)
    settled(channel, message)
    throw err
  })
}

function failed<M extends TraceMessage> (channel: TracingChannel<unknown, M>, message: M, err: unknown): void {
  message.error = err
  channel.error.publish(message)
}

function settled<M extends TraceMessage> (channel: TracingChannel<unknown, M>, message: M): void {
  channel.asyncStart.publish(message)
  channel.asyncEnd.publish(message)
}

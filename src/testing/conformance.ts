import type { SessionStore } from '../store'
import type { Case } from './case'
import { basics } from './cases/basics'
import { compareAndSet } from './cases/compare-and-set'
import { expiry, realExpiry } from './cases/expiry'
import { ownership } from './cases/ownership'
import { touch } from './cases/touch'
import { userIndex } from './cases/user-index'
import { values } from './cases/values'
import { Check } from './check'
import { fakeClock, serverClock, type Clock } from './clock'

/**
 * Registers one case with a test runner. `fn` takes no argument, resolves when the case
 * passes and rejects, naming the case and what it expected, when it fails.
 */
export type RegisterCase = (name: string, fn: () => Promise<void>) => unknown

export interface ConformanceOptions {
  /** node:test's `test`, or `(name, fn) => t.test(name, fn)` with tap. */
  test: RegisterCase
  /** A fresh store for each case. */
  store: () => SessionStore | Promise<SessionStore>
  /** Runs after each case instead of `store.close()`, e.g. to also empty a database. */
  close?: (store: SessionStore) => unknown
  /** Put in front of every case name. */
  name?: string
  /**
   * Whose clock ends records. `'fake'` (default): the store compares `expiresAt` with
   * `Date.now()`, and the suite moves Date.now forward instead of waiting; the cases must then
   * run one at a time. `'server'`: a backend drops records on its own clock, and the suite
   * waits `shortTtlMs` and a margin wherever a record has to expire.
   */
  clock?: 'fake' | 'server'
  /**
   * Lifetime, in ms, of the records the suite waits out for real: under `'server'` in every
   * expiry case, under `'fake'` in one ("a record expires for real"). Default 1000; a backend
   * that counts whole seconds needs 2000.
   */
  shortTtlMs?: number
}

interface Settings {
  test: RegisterCase
  store: () => SessionStore | Promise<SessionStore>
  close: (store: SessionStore) => unknown
  prefix: string
  clock: 'fake' | 'server'
  shortTtlMs: number
}

const OPTION_NAMES = ['test', 'store', 'close', 'name', 'clock', 'shortTtlMs']

function invalid (message: string): never {
  throw new TypeError(`conformance(): ${message}`)
}

// A mistake here would otherwise surface as a confusing failure of every case.
function settingsOf (options: ConformanceOptions): Settings {
  if (typeof options !== 'object' || options === null) invalid('options must be an object')
  const unknown = Object.keys(options).filter((name) => !OPTION_NAMES.includes(name))
  if (unknown.length > 0) invalid(`unknown option ${unknown.join(', ')} (known: ${OPTION_NAMES.join(', ')})`)
  const { test, store, close = (given: SessionStore) => given.close?.(), name, clock = 'fake', shortTtlMs = 1000 } = options
  if (typeof test !== 'function') invalid('test must be a function (name, fn) that registers one case')
  if (typeof store !== 'function') invalid('store must be a function that returns a fresh store')
  if (typeof close !== 'function') invalid('close must be a function (store) => Promise')
  if (name !== undefined && typeof name !== 'string') invalid('name must be a string')
  if (clock !== 'fake' && clock !== 'server') invalid("clock must be 'fake' or 'server'")
  if (!Number.isInteger(shortTtlMs) || shortTtlMs < 1) invalid('shortTtlMs must be a whole number of milliseconds, at least 1')
  return { test, store, close, prefix: name === undefined ? '' : `${name}: `, clock, shortTtlMs }
}

function casesFor (settings: Settings): Case[] {
  // Under the server's clock every expiry case already waits for real.
  const real = settings.clock === 'fake' ? [realExpiry(settings.shortTtlMs)] : []
  return [...basics, ...values, ...ownership, ...compareAndSet, ...expiry, ...real, ...touch, ...userIndex]
}

/** An error of the case's own checks already names the case; anything else is wrapped so it does. */
function named (caseName: string, err: unknown): Error {
  if (err instanceof Error && err.message.startsWith(`${caseName}: `)) return err
  const message = err instanceof Error ? err.message : String(err)
  return new Error(`${caseName}: unexpected error: ${message}`, { cause: err })
}

async function settled (action: () => unknown): Promise<{ error: unknown } | undefined> {
  try {
    await action()
    return undefined
  } catch (error) {
    return { error }
  }
}

async function runCase (caseName: string, each: Case, settings: Settings): Promise<void> {
  let clock: Clock | undefined
  try {
    const started = settings.clock === 'fake' ? fakeClock() : serverClock(settings.shortTtlMs)
    clock = started
    const store = await settings.store()
    const ran = await settled(() => each.run({ store, check: new Check(caseName), clock: started }))
    // The store is closed whatever the case did; a failed case outranks a failed close.
    const closed = await settled(() => settings.close(store))
    const failure = ran ?? closed
    if (failure !== undefined) throw failure.error
  } catch (err) {
    throw named(caseName, err)
  } finally {
    clock?.stop()
  }
}

/**
 * Registers, through `options.test`, one case per rule of the store contract (src/store.ts)
 * for the stores `options.store` makes. Every case gets a fresh store and closes it.
 */
export function conformance (options: ConformanceOptions): void {
  const settings = settingsOf(options)
  for (const each of casesFor(settings)) {
    const caseName = settings.prefix + each.title
    settings.test(caseName, () => runCase(caseName, each, settings))
  }
}

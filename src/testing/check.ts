import { AssertionError } from 'node:assert/strict'
import { inspect, isDeepStrictEqual } from 'node:util'

// Enough of a value to recognise it: a 1 MB string or a list of thirty records would drown
// the message. The whole values stay on the error as `actual` and `expected`.
const SHOWN = { depth: 5, maxArrayLength: 8, maxStringLength: 120, breakLength: Infinity } as const

function show (value: unknown): string {
  return inspect(value, SHOWN)
}

/** Assertions whose failures name the case, what was looked at, and what was expected. */
export class Check {
  readonly #caseName: string

  constructor (caseName: string) {
    this.#caseName = caseName
  }

  /** `what` names the value looked at, e.g. 'get of a destroyed key'. */
  equal (actual: unknown, expected: unknown, what: string): void {
    if (!Object.is(actual, expected)) this.#mismatch(what, actual, expected, 'strictEqual')
  }

  same (actual: unknown, expected: unknown, what: string): void {
    if (!isDeepStrictEqual(actual, expected)) this.#mismatch(what, actual, expected, 'deepStrictEqual')
  }

  /** `expectation` reads after "expected", e.g. 'two gets to return distinct objects'. */
  ok (value: boolean, expectation: string): void {
    if (!value) this.fail(`expected ${expectation}`)
  }

  fail (message: string): never {
    throw new AssertionError({ message: `${this.#caseName}: ${message}` })
  }

  #mismatch (what: string, actual: unknown, expected: unknown, operator: string): never {
    throw new AssertionError({
      message: `${this.#caseName}: ${what}: expected ${show(expected)}, got ${show(actual)}`,
      actual,
      expected,
      operator
    })
  }
}

import type { SessionStore } from '../store'
import type { Check } from './check'
import type { Clock } from './clock'

/** What one case gets: a fresh store, assertions that name the case, and its clock. */
export interface CaseContext {
  store: SessionStore
  check: Check
  clock: Clock
}

/** One rule of src/store.ts, checked on a fresh store. */
export interface Case {
  title: string
  run (context: CaseContext): Promise<void>
}

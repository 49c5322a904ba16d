import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import type { FastifySessionsOptions } from '../../src/index'
import { build, sessionCookie } from './app'
import { StoreSpy } from './store-spy'
import { logLines, type LogLine } from './log-lines'
import { stateRoutes } from './routes'

export type Options = Partial<FastifySessionsOptions>

export interface FaultyApp {
  app: FastifyInstance
  store: StoreSpy
  /** Every log line, from debug up. */
  lines: LogLine[]
}

/** An app on a StoreSpy with the state routes and the test's own, closed when the test ends. */
export async function faultyApp (
  t: tap.Test,
  options: Options = {},
  routes: (app: FastifyInstance, store: StoreSpy) => void = () => {}
): Promise<FaultyApp> {
  const store = new StoreSpy()
  const { lines, logger } = logLines()
  const app = await build({ store, ...options }, (app) => {
    stateRoutes(app)
    routes(app, store)
  }, { logger })
  t.teardown(async () => {
    await app.close()
    await store.close()
  })
  return { app, store, lines }
}

/** Stores `key=value` in a new session and returns its cookie (`sid=…`). */
export async function seed (app: FastifyInstance, key = 'user', value = 'ada'): Promise<string> {
  const res = await app.inject({ method: 'POST', url: '/put', query: { key, value } })
  const cookie = sessionCookie(res)
  if (cookie === undefined) throw new Error(`no session cookie (status ${res.statusCode}: ${res.body})`)
  return cookie
}

/** The session id inside a `sid=<id>.<signature>` cookie. */
export function idOf (cookie: string): string {
  return cookie.slice(cookie.indexOf('=') + 1).split('.')[0]
}

export interface Dump {
  data: Record<string, unknown>
  isNew: boolean
  id: string
}

/** What GET /dump shows for a cookie. */
export async function dump (app: FastifyInstance, cookie: string): Promise<Dump> {
  return (await app.inject({ url: '/dump', headers: { cookie } })).json() as Dump
}

/** The `code` of a JSON error reply, or undefined. */
export function replyCode (res: LightMyRequestResponse): string | undefined {
  try {
    return (res.json() as { code?: string }).code
  } catch {
    return undefined
  }
}

/** A 503 with the store-unavailable code. */
export function assertUnavailable (t: tap.Test, res: LightMyRequestResponse, what: string): void {
  t.equal(res.statusCode, 503, `${what}: 503`)
  t.equal(replyCode(res), 'FST_SESS_STORE_UNAVAILABLE', `${what}: FST_SESS_STORE_UNAVAILABLE`)
}

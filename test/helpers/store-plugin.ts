import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { sessionCookie } from './app'
import { Barrier } from './gate'
import { storeRoutes } from './routes'

// What the stores' plugin-level tests share: their routes, a burst that makes concurrent
// requests all load before any commits, and the requests they send.

/** Where `POST /increment` and `POST /set/:key` wait; one per test file (each is a process). */
export const burst = new Barrier()

export const routes = (app: FastifyInstance): void => storeRoutes(app, burst)

/** `count` requests at once, all loaded before any of them commits. */
export function together<T> (count: number, request: (i: number) => Promise<T>): Promise<T[]> {
  burst.expect(count)
  return Promise.all(Array.from({ length: count }, (_, i) => request(i)))
}

export function cookieOf (res: LightMyRequestResponse): string {
  const cookie = sessionCookie(res)
  if (cookie === undefined) throw new Error(`no session cookie (status ${res.statusCode}: ${res.body})`)
  return cookie
}

export async function login (app: FastifyInstance, user = 'ada'): Promise<string> {
  return cookieOf(await app.inject({ method: 'POST', url: '/login', query: { user } }))
}

export const me = async (app: FastifyInstance, cookie: string): Promise<LightMyRequestResponse> => await app.inject({ url: '/me', headers: { cookie } })
export const post = (app: FastifyInstance, url: string, cookie: string): Promise<LightMyRequestResponse> => app.inject({ method: 'POST', url, headers: { cookie } })
export const dump = async (app: FastifyInstance, cookie: string): Promise<Record<string, unknown>> => (await app.inject({ url: '/dump', headers: { cookie } })).json()

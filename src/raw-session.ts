import type { IncomingMessage } from 'node:http'
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from 'fastify'
import { NotARequestError } from './errors'
import { loadSession } from './load-session'
import { Session, type SessionContext } from './session'

/**
 * `fastify.sessions.load(raw)`: the session of a raw Node request (socket.io's
 * `socket.request`, an `upgrade` handler's request), its cookie verified exactly as a route's
 * load verifies it. There is no reply: nothing is committed unless the caller saves, and what
 * only a new cookie would make last is refused (see Session's cookieless rules).
 */
export async function loadRawSession (ctx: SessionContext, fastify: FastifyInstance, raw: IncomingMessage): Promise<Session> {
  if (raw === null || typeof raw !== 'object' || raw.headers === null || typeof raw.headers !== 'object') {
    throw new NotARequestError(describe(raw))
  }
  const request = standIn(raw, fastify.log)
  const header = raw.headers.cookie
  const cookie = header === undefined ? undefined : fastify.parseCookie(header)[ctx.options.cookieName]
  const loaded = cookie === undefined ? undefined : await loadSession(ctx, request, null, cookie)
  return loaded ?? new Session(ctx, request, null)
}

// Without a reply, a session reads two things of its request: the logger, and the route's
// session config, of which a raw request has none (the registration's conflict policy holds).
function standIn (raw: IncomingMessage, log: FastifyBaseLogger): FastifyRequest {
  const stand = { raw, log, headers: raw.headers, method: raw.method, url: raw.url, routeOptions: { config: {} } }
  return stand as unknown as FastifyRequest
}

function describe (value: unknown): string {
  if (value === null) return 'null'
  return typeof value === 'object' ? 'an object without headers' : typeof value
}

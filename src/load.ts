import type { FastifyReply, FastifyRequest } from 'fastify'
import type { SessionContext } from './context'
import { storeKey } from './crypto/ids'
import { Session } from './session'

function reject (request: FastifyRequest, reason: string): undefined {
  // The raw cookie and id are never logged; the reason is enough to debug.
  request.log.debug({ sessionRejected: reason }, 'fastify-sessions: session cookie not accepted, starting a fresh session')
  return undefined
}

/**
 * Turns a session cookie into a session, or into undefined (a fresh session follows)
 * when the cookie is forged, unknown or expired. Only a verified id reaches the store.
 */
export async function loadSession (
  ctx: SessionContext, request: FastifyRequest, reply: FastifyReply, cookie: string
): Promise<Session | undefined> {
  const verified = ctx.signer.verify(cookie)
  if ('reason' in verified) return reject(request, verified.reason)
  const key = storeKey(verified.id)
  const record = await ctx.store.get(key)
  if (record === undefined) return reject(request, 'unknown or expired session')
  const now = Date.now()
  if (record.expiresAt <= now) return reject(request, 'idle timeout passed')
  if (record.createdAt + ctx.options.absoluteMs <= now) return reject(request, 'absolute timeout passed')
  return new Session(ctx, request, reply, { id: verified.id, key, record, resign: !verified.current })
}

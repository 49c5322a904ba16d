import type { FastifyReply, FastifyRequest } from 'fastify'
import { expiryFor } from './commit'
import type { SessionContext, StatelessCookie } from './context'
import { storeKey } from './crypto/ids'
import { Session, type LoadedSession } from './session'
import type { SessionRecord } from './store'

function reject (request: FastifyRequest, reason: string): undefined {
  // The raw cookie and id are never logged; the reason is enough to debug.
  request.log.debug({ sessionRejected: reason }, 'fastify-sessions: session cookie not accepted, starting a fresh session')
  return undefined
}

function expired (ctx: SessionContext, record: SessionRecord): string | undefined {
  const now = Date.now()
  if (record.createdAt + ctx.options.absoluteMs <= now) return 'absolute timeout passed'
  if (record.expiresAt <= now) return 'idle timeout passed'
  return undefined
}

async function fromStore (ctx: SessionContext, cookie: string): Promise<LoadedSession | string> {
  const verified = ctx.signer.verify(cookie)
  if ('reason' in verified) return verified.reason
  const key = storeKey(verified.id)
  const record = await ctx.store.get(key)
  if (record === undefined) return 'unknown or expired session'
  return { id: verified.id, key, record, resign: !verified.current }
}

// Timeouts come from the sealed timestamps: the cookie's own expiry is the browser's business.
async function fromCookie (ctx: SessionContext, { codec, sealer }: StatelessCookie, cookie: string): Promise<LoadedSession | string> {
  const opened = await sealer.unseal(ctx.options.cookieName, cookie)
  if (!opened.ok) return opened.reason
  const text = opened.plaintext.toString('utf8')
  const payload = codec.decode(text)
  if (payload === undefined) return 'unreadable payload'
  const { id, data, createdAt, lastActive } = payload
  const record = { data, version: 1, createdAt, expiresAt: expiryFor(ctx, lastActive, createdAt) }
  return { id, key: undefined, record, resign: !opened.current, sealed: opened.current ? cookie : undefined, payload: text }
}

/**
 * Turns a session cookie into a session, or into undefined (a fresh session follows)
 * when the cookie is forged, unknown or expired. Only a verified id reaches the store.
 */
export async function loadSession (
  ctx: SessionContext, request: FastifyRequest, reply: FastifyReply, cookie: string
): Promise<Session | undefined> {
  const loaded = ctx.stateless === undefined ? await fromStore(ctx, cookie) : await fromCookie(ctx, ctx.stateless, cookie)
  if (typeof loaded === 'string') return reject(request, loaded)
  const reason = expired(ctx, loaded.record)
  if (reason !== undefined) return reject(request, reason)
  return new Session(ctx, request, reply, loaded)
}

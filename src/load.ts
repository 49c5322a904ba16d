import type { FastifyReply, FastifyRequest } from 'fastify'
import { expiryFor } from './commit'
import type { OpenedCookie, SessionContext, SignedCookie, StatelessCookie } from './context'
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

function verify (ctx: SessionContext, cookie: string): SignedCookie | string {
  const verified = ctx.signer.verify(cookie)
  if ('reason' in verified) return verified.reason
  const signed = { id: verified.id, key: storeKey(verified.id), current: verified.current }
  ctx.signed.add(cookie, signed)
  return signed
}

async function fromStore (ctx: SessionContext, cookie: string): Promise<LoadedSession | string> {
  const signed = ctx.signed.get(cookie) ?? verify(ctx, cookie)
  if (typeof signed === 'string') return signed
  const record = await ctx.store.get(signed.key)
  if (record === undefined) return 'unknown or expired session'
  return { id: signed.id, key: signed.key, record, resign: !signed.current }
}

async function open (ctx: SessionContext, { sealer, opened }: StatelessCookie, cookie: string): Promise<OpenedCookie | string> {
  const name = ctx.options.cookieName
  const result = sealer.unsealInline(name, cookie) ?? await sealer.unseal(name, cookie)
  if (!result.ok) return result.reason
  const entry = { payload: result.plaintext.toString('utf8'), current: result.current }
  opened.add(cookie, entry)
  return entry
}

// Timeouts come from the sealed timestamps: the cookie's own expiry is the browser's business.
async function fromCookie (ctx: SessionContext, stateless: StatelessCookie, cookie: string): Promise<LoadedSession | string> {
  const opened = stateless.opened.get(cookie) ?? await open(ctx, stateless, cookie)
  if (typeof opened === 'string') return opened
  const payload = stateless.codec.decode(opened.payload)
  if (payload === undefined) return 'unreadable payload'
  const { id, data, createdAt, lastActive } = payload
  const record = { data, version: 1, createdAt, expiresAt: expiryFor(ctx, lastActive, createdAt) }
  const sealed = opened.current ? cookie : undefined
  return { id, key: undefined, record, resign: !opened.current, sealed, payload: opened.payload }
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

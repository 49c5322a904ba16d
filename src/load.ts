import type { FastifyReply, FastifyRequest } from 'fastify'
import { expiryFor } from './commit'
import type { OpenedCookie, SessionContext, SignedCookie, StatelessCookie } from './context'
import type { Unsealed } from './crypto/seal'
import { storeKey } from './crypto/ids'
import { Session, type LoadedSession } from './session'
import type { SealedSession, SessionRecord, StatelessStore } from './store'

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

function opened (stateless: StatelessCookie, cookie: string, result: Unsealed): OpenedCookie | string {
  if (!result.ok) return result.reason
  const entry = { payload: result.plaintext, current: result.current }
  stateless.opened.add(cookie, entry)
  return entry
}

// Authentic but unreadable, e.g. written before a custom store changed its format:
// like any other cookie the plugin cannot use, it gives a fresh session, not a 500.
function decode (codec: StatelessStore, payload: Buffer): SealedSession | undefined {
  try {
    return codec.decode(payload)
  } catch {
    return undefined
  }
}

// Synchronous unless the cookie is opened on the worker pool.
function open (ctx: SessionContext, stateless: StatelessCookie, cookie: string): OpenedCookie | string | Promise<OpenedCookie | string> {
  const name = ctx.options.cookieName
  const inline = stateless.sealer.unsealInline(name, cookie)
  if (inline !== undefined) return opened(stateless, cookie, inline)
  return stateless.sealer.unseal(name, cookie).then((result) => opened(stateless, cookie, result))
}

function fromCookie (ctx: SessionContext, stateless: StatelessCookie, cookie: string): LoadedSession | string | Promise<LoadedSession | string> {
  const entry = stateless.opened.get(cookie) ?? open(ctx, stateless, cookie)
  if (entry instanceof Promise) return entry.then((found) => fromOpened(ctx, stateless, cookie, found))
  return fromOpened(ctx, stateless, cookie, entry)
}

// Timeouts come from the sealed timestamps: the cookie's own expiry is the browser's business.
function fromOpened (ctx: SessionContext, stateless: StatelessCookie, cookie: string, entry: OpenedCookie | string): LoadedSession | string {
  if (typeof entry === 'string') return entry
  const payload = decode(stateless.codec, entry.payload)
  if (payload === undefined) return 'unreadable payload'
  const { id, data, createdAt, lastActive } = payload
  const record = { data, version: 1, createdAt, expiresAt: expiryFor(ctx, lastActive, createdAt) }
  const sealed = entry.current ? cookie : undefined
  return { id, key: undefined, record, resign: !entry.current, sealed, payload: entry.payload }
}

/**
 * Turns a session cookie into a session, or into undefined (a fresh session follows)
 * when the cookie is forged, unknown or expired. Only a verified id reaches the store.
 */
export function loadSession (
  ctx: SessionContext, request: FastifyRequest, reply: FastifyReply, cookie: string
): Session | undefined | Promise<Session | undefined> {
  const loaded = ctx.stateless === undefined ? fromStore(ctx, cookie) : fromCookie(ctx, ctx.stateless, cookie)
  // A cookie opened inline (or found among the recent ones) needs no promise.
  if (loaded instanceof Promise) return loaded.then((found) => toSession(ctx, request, reply, found))
  return toSession(ctx, request, reply, loaded)
}

function toSession (ctx: SessionContext, request: FastifyRequest, reply: FastifyReply, loaded: LoadedSession | string): Session | undefined {
  if (typeof loaded === 'string') return reject(request, loaded)
  const reason = expired(ctx, loaded.record)
  if (reason !== undefined) return reject(request, reason)
  return new Session(ctx, request, reply, loaded)
}

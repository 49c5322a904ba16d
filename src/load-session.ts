import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Loaded } from './backends/backend'
import { then, type MaybePromise } from './maybe-promise'
import { Session, type SessionContext } from './session'
import { loadChannel, storeName, traced, type LoadTrace } from './tracing'

/**
 * Turns a session cookie into a session, or into undefined (a fresh session follows when
 * the route asks for one) when the cookie is forged, unknown, expired or its record is
 * unusable. Rejects only when the store failed. `reply` is null for sessions.load().
 */
export function loadSession (ctx: SessionContext, request: FastifyRequest, reply: FastifyReply | null, cookie: string): MaybePromise<Session | undefined> {
  if (!loadChannel.hasSubscribers) return load(ctx, request, reply, cookie, undefined)
  const trace = loadTrace(ctx, undefined)
  return traced(loadChannel, trace, () => load(ctx, request, reply, cookie, trace))
}

/** Publishes the load of a request without a session cookie, for subscribers who count them. */
export function traceNoCookie (ctx: SessionContext): void {
  traced(loadChannel, loadTrace(ctx, 'fresh'), () => undefined)
}

function loadTrace (ctx: SessionContext, outcome: LoadTrace['outcome']): LoadTrace {
  return { store: storeName(ctx.options.store), async: false, outcome, reason: undefined }
}

function load (ctx: SessionContext, request: FastifyRequest, reply: FastifyReply | null, cookie: string, trace: LoadTrace | undefined): MaybePromise<Session | undefined> {
  const loaded = ctx.backend.load(cookie)
  if (!ctx.revocations.checksStamps) return then(loaded, (found) => toSession(ctx, request, reply, found, trace))
  return then(then(loaded, (found) => unlessRevoked(ctx, found)), (found) => toSession(ctx, request, reply, found, trace))
}

// Stores that cannot delete a user's sessions end them by a stamp, checked here.
function unlessRevoked (ctx: SessionContext, loaded: Loaded): MaybePromise<Loaded> {
  if (!loaded.ok) return loaded
  return then(ctx.revocations.revoked(loaded.state), (revoked): Loaded => revoked ? REVOKED : loaded)
}

const REVOKED: Loaded = { ok: false, reason: "revoked (all the user's sessions were ended)", level: 'debug' }

function toSession (ctx: SessionContext, request: FastifyRequest, reply: FastifyReply | null, loaded: Loaded, trace: LoadTrace | undefined): Session | undefined {
  if (trace !== undefined) traceOutcome(trace, loaded)
  if (loaded.ok) return new Session(ctx, request, reply, loaded.state)
  // The raw cookie and id are never logged; the reason is enough to debug. A user's stale
  // cookie is routine (debug); a record the plugin cannot use is the operator's to fix (warn).
  request.log[loaded.level]({ sessionRejected: loaded.reason }, 'fastify-sessions: session cookie not accepted, starting a fresh session')
  return undefined
}

function traceOutcome (trace: LoadTrace, loaded: Loaded): void {
  trace.outcome = loaded.ok ? 'found' : 'refused'
  if (!loaded.ok) trace.reason = loaded.reason
}

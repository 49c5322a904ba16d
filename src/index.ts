import fastifyCookie from '@fastify/cookie'
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import type { IncomingMessage } from 'node:http'
import fp from 'fastify-plugin'
import { createContext } from './create-context'
import { addTokenCheck, crossOriginCheck } from './csrf'
import { loadSession, traceNoCookie } from './load-session'
import { checkRouteConfig, resolveOptions, type ConflictPolicy, type FastifySessionsOptions, type RouteCsrfOptions } from './options'
import { loadRawSession } from './raw-session'
import type { ListSessionsOptions, SessionInfo } from './revocations'
import { commitAtEnd, Session } from './session'
import { loadChannel } from './tracing'

/** `fastify.sessions`: what concerns sessions beyond the current request. */
export interface SessionsApi {
  /**
   * Ends every session of a user (`userKey` names the user). Resolves how many ended, or
   * undefined where the store ends them by a stamp and cannot count them.
   */
  revokeUser (userId: string | number): Promise<number | undefined>
  /** The user's live sessions, most recently active first: times and chosen metadata, never an id. */
  listSessions (userId: string | number, options?: ListSessionsOptions): Promise<SessionInfo[]>
  /**
   * The session of a raw Node request (socket.io's `socket.request`, an `upgrade` handler's
   * request), verified as a route's load verifies it. Nothing is committed unless saved, and
   * what needs a new cookie (a new session, regenerate()) is refused: there is no reply.
   */
  load (request: IncomingMessage): Promise<Session>
}

declare module 'fastify' {
  interface FastifyInstance {
    sessions: SessionsApi
  }
  interface FastifyRequest {
    /** The session of this request; undefined on routes with `config: { session: false }`. */
    session: Session
  }
  interface FastifyContextConfig {
    /**
     * `false` turns all session work off for the route (the cross-origin check stays);
     * `{ conflict }` overrides the policy; `{ csrf: false }` turns the CSRF checks off (webhooks).
     */
    session?: boolean | { conflict?: ConflictPolicy, csrf?: false | RouteCsrfOptions }
  }
}

const kSession = Symbol('fastify-sessions.session')
const kReply = Symbol('fastify-sessions.reply')
const kLoadError = Symbol('fastify-sessions.load-error')

interface SessionSlots {
  [kSession]: Session | null
  [kReply]: FastifyReply | null
  [kLoadError]: unknown
}

type SessionRequest = FastifyRequest & SessionSlots

function optedOut (request: FastifyRequest): boolean {
  return request.routeOptions.config.session === false
}

async function fastifySessionsPlugin (fastify: FastifyInstance, opts: FastifySessionsOptions): Promise<void> {
  const options = resolveOptions(opts)
  const { ctx, close, warnings } = createContext(options, (err) => fastify.log.warn({ err }, 'fastify-sessions: crypto worker pool failed, sealing on the main thread'))
  for (const warning of warnings) fastify.log.warn(warning)
  if (!fastify.hasDecorator('parseCookie')) await fastify.register(fastifyCookie)

  const { revocations } = ctx
  fastify.decorate('sessions', {
    revokeUser: (userId: string | number) => revocations.revokeUser(userId),
    listSessions: (userId: string | number, options?: ListSessionsOptions) => revocations.listSessions(userId, options),
    load: (request: IncomingMessage) => loadRawSession(ctx, fastify, request)
  } satisfies SessionsApi)
  const { csrf } = options
  fastify.addHook('onRoute', (route) => {
    checkRouteConfig(route.config?.session, `${route.method} ${route.url}`, csrf !== undefined)
    if (csrf !== undefined) addTokenCheck(route, csrf)
  })
  fastify.decorateRequest(kSession, null)
  fastify.decorateRequest(kReply, null)
  fastify.decorateRequest(kLoadError, null)
  fastify.decorateRequest('session', {
    // Created when first read: a request that never reads its session pays for none, and a
    // store that failed at load fails only the requests that need the session.
    getter (this: FastifyRequest): Session {
      const req = this as SessionRequest
      if (req[kLoadError] !== null) throw req[kLoadError]
      const reply = req[kReply]
      if (req[kSession] === null && reply !== null && !optedOut(this)) req[kSession] = new Session(ctx, this, reply)
      // Undefined only on routes that opted out: the declared type covers the common case.
      return (req[kSession] ?? undefined) as Session
    }
  })

  const refuseCrossOrigin = csrf === undefined ? undefined : crossOriginCheck(csrf)
  fastify.addHook('onRequest', function loadHook (request, reply, done: HookHandlerDoneFunction) {
    const refused = refuseCrossOrigin?.(request, reply)
    if (refused !== undefined) return done(refused)
    const req = request as SessionRequest
    req[kReply] = reply
    const cookie = request.cookies[options.cookieName]
    // The route's opt-out is looked up only when there is session work to skip: building
    // routeOptions is the dearest part of an anonymous request's hook.
    if (cookie === undefined) {
      if (loadChannel.hasSubscribers && !optedOut(request)) traceNoCookie(ctx)
      return done()
    }
    if (optedOut(request)) return done()
    const loaded = loadSession(ctx, request, reply, cookie)
    if (!(loaded instanceof Promise)) {
      if (loaded !== undefined) req[kSession] = loaded
      return done()
    }
    loaded.then((session) => {
      if (session !== undefined) req[kSession] = session
      done()
    }, (err: unknown) => {
      req[kLoadError] = err
      done()
    })
  })

  fastify.addHook('onSend', function commitHook (request, reply, payload, done) {
    const session = (request as SessionRequest)[kSession]
    if (session === null) return done(null, payload)
    let pending
    try {
      pending = session[commitAtEnd]()
    } catch (err) {
      pending = Promise.reject(err)
    }
    if (pending === undefined) return done(null, payload)
    pending.then(() => done(null, payload), done)
  })

  fastify.addHook('onClose', close)
}

const fastifySessions = fp(fastifySessionsPlugin, { fastify: '5.x', name: 'fastify-sessions' })

export default fastifySessions
export { fastifySessions, Session }
export * from './errors'
export { CookieStore, type CookieStoreOptions } from './stores/cookie'
export { MemoryStore, type MemoryStoreOptions } from './stores/memory'
export { RedisStore, type RedisSerializer, type RedisStoreOptions } from './stores/redis'
export { PostgresStore, type PostgresQueryable, type PostgresResult, type PostgresStoreOptions } from './stores/postgres'
export { MongoStore, type MongoSessionDocument, type MongoStoreOptions } from './stores/mongo'
export { MemcachedStore, type MemcachedResponse, type MemcachedStoreOptions, type MemjsClient } from './stores/memcached'
export { FileStore, type FileStoreOptions } from './stores/file'
export { fromExpressStore, type ExpressStore, type ExpressStoreCallback } from './stores/express-store'
export type { SealedSession, SessionData, SessionRecord, SessionStore, StatelessStore, UserSession } from './store'
export type { ListSessionsOptions, SessionInfo } from './revocations'
export { tracingChannels, type CommitTrace, type LoadTrace, type StoreOperation, type StoreTrace, type TraceMessage } from './tracing'
export type { UserKey } from './user-digest'
export type { ConflictPolicy, FastifySessionsOptions, RouteCsrfOptions, SessionCookieOptions, SessionCryptoOptions, SessionCsrfOptions } from './options'

// CommonJS: require('fastify-sessions') is the plugin itself, carrying every export. At build time
// scripts/entry-points.mjs derives the ES module entry from this object and the `export =`
// declarations from this file's exports, so a new export needs nothing more than its line above.
module.exports = Object.assign(fastifySessions, exports)

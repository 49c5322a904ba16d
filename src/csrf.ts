import type { FastifyReply, FastifyRequest, preValidationHookHandler, RouteOptions } from 'fastify'
import { CrossOriginError, CsrfTokenError } from './errors'
import type { ResolvedCsrf, RouteCsrfOptions } from './options'

// Cross-site request forgery defence, two checks:
//
// 1. Cross-origin protection for every unsafe-method request, following Go 1.25's
//    net/http CrossOriginProtection (src/net/http/csrf.go) and Filippo Valsorda's write-up,
//    https://words.filippo.io/csrf/: browsers say where a request comes from in Sec-Fetch-Site
//    (all major ones since 2023), and in Origin before that. A request with neither header is
//    not from a browser (or is a same-origin one from a very old browser), and only a browser
//    can be made to send a forged request with its user's cookies.
//    A WebSocket handshake is a GET, yet the socket it opens acts with the user's cookies for
//    as long as it lives (cross-site WebSocket hijacking): a request asking for an Upgrade is
//    checked like an unsafe one. Browsers send Origin, and Sec-Fetch-Site, with handshakes.
// 2. Optionally, a session-bound token (Session.csrfToken()) on unsafe methods, for defence in
//    depth and for browsers that send neither header.

const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS'])
const ALLOWED = { ok: true } as const

type Verdict = typeof ALLOWED | { ok: false, reason: string }
type RefusalClass = typeof CrossOriginError | typeof CsrfTokenError

// Node joins a repeated header ('same-origin, cross-site'), which then matches nothing
// allowed; an empty one counts as absent, as in Go.
function headerValue (value: string | string[] | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : String(value)
}

// A Host header is a host and an optional port, nothing else.
const HOST = /^[\w.-]+(:\d+)?$|^\[[\d.:a-f]+\](:\d+)?$/i

// The Host carries no scheme, so an http page posting to the https site passes here; browsers
// that old are rare and HSTS closes the gap (Go makes the same choice). The host is read in the
// origin's scheme, so a default port written in one and not the other still matches.
// request.host follows trustProxy: behind a proxy that rewrites Host, X-Forwarded-Host counts.
function sameHost (origin: string, host: string): boolean {
  if (!HOST.test(host) || !URL.canParse(origin)) return false
  const { protocol, host: originHost } = new URL(origin)
  const own = `${protocol}//${host}`
  return URL.canParse(own) && new URL(own).host === originHost
}

/** Go's algorithm: Sec-Fetch-Site when the browser sends it, else Origin against Host. */
function crossOrigin (request: FastifyRequest, trusted: ReadonlySet<string>): Verdict {
  const site = headerValue(request.headers['sec-fetch-site'])
  if (site === 'same-origin' || site === 'none') return ALLOWED
  const origin = headerValue(request.headers.origin)
  if (origin !== undefined && trusted.has(origin)) return ALLOWED
  if (site !== undefined) return { ok: false, reason: 'Sec-Fetch-Site is not same-origin or none' }
  if (origin === undefined || sameHost(origin, request.host)) return ALLOWED
  return { ok: false, reason: 'Origin does not match Host' }
}

function routeCsrf (config: unknown): false | RouteCsrfOptions | undefined {
  const session = (config as { session?: unknown } | undefined)?.session
  return typeof session === 'object' && session !== null ? (session as { csrf?: false | RouteCsrfOptions }).csrf : undefined
}

// A refusal is a user problem, logged at debug (Fastify logs the 403 itself at info); what
// report-only lets through is logged at warn, since finding those is the point of the mode.
function refusal (request: FastifyRequest, reportOnly: boolean, reason: string, Refusal: RefusalClass): Error | undefined {
  const detail = { csrf: reason, origin: request.headers.origin, secFetchSite: request.headers['sec-fetch-site'] }
  if (reportOnly) {
    request.log.warn(detail, 'fastify-sessions: csrf.reportOnly let through a request it would refuse')
    return undefined
  }
  request.log.debug(detail, 'fastify-sessions: request refused')
  return new Refusal()
}

/** What the cross-origin check refuses a request with; undefined lets it through. */
export type CrossOriginCheck = (request: FastifyRequest, reply: FastifyReply) => Error | undefined

/**
 * The cross-origin check, run first in the plugin's onRequest hook: before the session is
 * loaded, so a refused request costs no store I/O, and without a hook of its own, which
 * every request would pay for. The route's settings are read only to refuse.
 */
export function crossOriginCheck (csrf: ResolvedCsrf): CrossOriginCheck {
  return function refuseCrossOrigin (request, reply) {
    if (SAFE_METHODS.has(request.method) && request.headers.upgrade === undefined) return undefined
    const verdict = crossOrigin(request, csrf.trustedOrigins)
    if (verdict.ok) return undefined
    const route = routeCsrf(request.routeOptions.config)
    if (route === false) return undefined
    const refused = refusal(request, route?.reportOnly ?? csrf.reportOnly, verdict.reason, CrossOriginError)
    if (refused !== undefined && request.headers.upgrade !== undefined) closeAfter(request, reply)
    return refused
  }
}

// @fastify/websocket routes an upgrade request on a socket that only its own hooks end: a
// handshake refused before they ran would leave the socket open (half-closed once the client
// leaves), and fastify.close() waiting for it. A refused handshake ends its connection.
function closeAfter (request: FastifyRequest, reply: FastifyReply): void {
  reply.header('connection', 'close')
  reply.raw.once('finish', () => request.raw.socket.end())
}

// The header when there is one, else the form or JSON field: both are places a cross-site
// page can neither read nor fill in. A cookie would be neither (naive double submit).
function tokenOf (request: FastifyRequest): unknown {
  const header = request.headers['x-csrf-token']
  if (header !== undefined) return header
  const body = request.body
  return body !== null && typeof body === 'object' && Object.hasOwn(body, '_csrf') ? (body as { _csrf: unknown })._csrf : undefined
}

// preValidation: the first hook after the body is parsed, before the route's own validation.
function tokenHook (reportOnly: boolean): preValidationHookHandler {
  return function csrfTokenCheck (request, _reply, done) {
    if (SAFE_METHODS.has(request.method)) return done()
    let valid: boolean
    try {
      valid = request.session.verifyCsrfToken(tokenOf(request))
    } catch (err) {
      // The session failed to load (store outage): that error answers the request.
      return done(err as Error)
    }
    done(valid ? undefined : refusal(request, reportOnly, 'missing or invalid CSRF token', CsrfTokenError))
  }
}

function unsafeMethod (route: RouteOptions): boolean {
  const methods = Array.isArray(route.method) ? route.method : [route.method]
  return methods.some((method) => !SAFE_METHODS.has(method.toUpperCase()))
}

/**
 * Adds the token check to a route (onRoute) where `csrf.token` or the route's own
 * `config.session.csrf.token` asks for it. Routes with `config: { session: false }` have no
 * session to bind a token to: only the cross-origin check applies there.
 */
export function addTokenCheck (route: RouteOptions, csrf: ResolvedCsrf): void {
  const config = route.config as { session?: unknown } | undefined
  if (config?.session === false || !unsafeMethod(route)) return
  const own = routeCsrf(config)
  if (own === false || !(own?.token ?? csrf.token)) return
  const existing = route.preValidation ?? []
  route.preValidation = [tokenHook(own?.reportOnly ?? csrf.reportOnly), ...(Array.isArray(existing) ? existing : [existing])]
}

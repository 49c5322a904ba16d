import type { SessionStore, StatelessStore } from './store'
import { MemoryStore } from './stores/memory'
import { UserDigest, type UserKey } from './user-digest'
import { bool, fail, integer, knownKeys, MAX_COOKIE_SECONDS, methods, oneOf, plainObject, seconds, sessionStore } from './validate'

export type ConflictPolicy = 'merge' | 'error' | 'overwrite'

/** Cookie attributes. `maxAge` is in seconds; without it the cookie lasts for the browser session. */
export interface SessionCookieOptions {
  path?: string
  domain?: string
  httpOnly?: boolean
  /** `'auto'` sets Secure when the request arrived over https (honours `trustProxy`). */
  secure?: boolean | 'auto'
  sameSite?: 'lax' | 'strict' | 'none'
  partitioned?: boolean
  maxAge?: number
}

/**
 * Cross-site request forgery defence. The cross-origin check (Fetch Metadata, then Origin
 * against Host) is on unless `csrf: false`; `token: true` also requires a session-bound token
 * on unsafe methods.
 */
export interface SessionCsrfOptions {
  /** Origins (`https://app.example.com`) whose cross-origin requests are accepted. */
  trustedOrigins?: readonly string[]
  /** Log (warn) what would be refused, and let it through. */
  reportOnly?: boolean
  /** Require `x-csrf-token` or a `_csrf` body field on unsafe methods. */
  token?: boolean
}

/** Per route, `config: { session: { csrf } }`: `false` turns both checks off (webhooks). */
export interface RouteCsrfOptions {
  reportOnly?: boolean
  token?: boolean
}

export interface SessionCryptoOptions {
  offload?: 'auto' | 'always' | 'never'
  threads?: number
}

/** Registration options. Every duration is in seconds. */
export interface FastifySessionsOptions {
  secret: string | readonly string[]
  store?: SessionStore | StatelessStore
  cookieName?: string
  cookie?: SessionCookieOptions
  idleTimeout?: number
  absoluteTimeout?: number
  saveUninitialized?: boolean
  rolling?: boolean
  conflict?: ConflictPolicy
  encryptAtRest?: boolean
  crypto?: SessionCryptoOptions
  /** Seconds one store call may take before the request fails with 503 FST_SESS_STORE_UNAVAILABLE. Default 2. */
  storeTimeout?: number
  /**
   * Names the user a session belongs to, for `fastify.sessions.revokeUser()` and
   * `listSessions()`: a session key (`'userId'`), or a function of the session data.
   */
  userKey?: UserKey
  /** Cross-site request forgery defence, on by default; `false` turns it off. */
  csrf?: boolean | SessionCsrfOptions
}

export interface ResolvedCookie {
  path: string
  domain: string | undefined
  httpOnly: boolean
  secure: boolean | 'auto'
  sameSite: 'lax' | 'strict' | 'none'
  partitioned: boolean
  maxAge: number | undefined
}

export interface ResolvedCsrf {
  /** Exactly as browsers send them: lower case, no default port. */
  trustedOrigins: ReadonlySet<string>
  reportOnly: boolean
  token: boolean
}

export interface ResolvedOptions {
  secrets: string[]
  store: SessionStore | StatelessStore
  ownsStore: boolean
  cookieName: string
  cookie: ResolvedCookie
  idleMs: number
  absoluteMs: number
  touchAfterMs: number
  saveUninitialized: boolean
  rolling: boolean
  conflict: ConflictPolicy
  encryptAtRest: boolean
  crypto: Required<SessionCryptoOptions>
  storeTimeoutMs: number
  /** Set when `userKey` is: the digests records carry for their user. */
  users: UserDigest | undefined
  /** Undefined with `csrf: false`. */
  csrf: ResolvedCsrf | undefined
}

export const DEFAULT_IDLE_TIMEOUT = 86_400
export const DEFAULT_ABSOLUTE_TIMEOUT = 604_800
export const DEFAULT_STORE_TIMEOUT = 2
export const MIN_SECRET_LENGTH = 32
// Random base64url of 32 characters has about 25 distinct ones; English prose has 15 or more.
const MIN_DISTINCT_CHARACTERS = 8
// A secret made of this many characters or fewer, the rest being copies of them, is refused.
const MAX_PATTERN_LENGTH = 16
// A copy shorter than this is what any random text has by chance.
const MIN_COPY_LENGTH = 3
// The idle deadline moves only after this share of the idle window has passed, so
// a busy user costs one cheap touch now and then instead of one per request.
const TOUCH_FRACTION = 0.1

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
// Path and domain end up inside a Set-Cookie header: no separators or control characters.
const ATTRIBUTE = /^[\x21-\x3a\x3c-\x7e]*$/
const OPTION_KEYS = [
  'secret', 'store', 'cookieName', 'cookie', 'idleTimeout', 'absoluteTimeout', 'saveUninitialized', 'rolling',
  'conflict', 'encryptAtRest', 'crypto', 'storeTimeout', 'userKey', 'csrf',
  // Fastify's own register() options, which it hands to the plugin along with ours.
  'prefix', 'logLevel', 'logSerializers'
] as const
const COOKIE_KEYS = ['path', 'domain', 'httpOnly', 'secure', 'sameSite', 'partitioned', 'maxAge'] as const
const SECONDS = 'durations are in seconds'
// Options of @fastify/session, @fastify/secure-session and express-session that users bring
// along: what to use instead.
const OPTION_HINTS: Readonly<Record<string, string>> = {
  idGenerator: 'ids are always 256 random bits from the operating system; there is nothing to configure',
  genid: 'ids are always 256 random bits from the operating system; there is nothing to configure',
  cookiePrefix: 'the cookie value is always `<id>.<signature>`; name the cookie with cookieName',
  algorithm: 'cookies are signed with HMAC-SHA256 (sealed with AES-256-GCM by CookieStore); there is no choice to make',
  key: 'use secret: a string of at least 32 characters, or a list of them for rotation',
  salt: 'keys are derived from secret with HKDF; there is no salt to give',
  sessionName: 'use cookieName',
  name: 'use cookieName',
  expiry: `use idleTimeout and absoluteTimeout (${SECONDS})`,
  maxAge: `use cookie.maxAge or idleTimeout (${SECONDS})`,
  resave: 'a session is written only when it changed; there is nothing to configure',
  unset: 'set(key, undefined) deletes a key',
  proxy: "cookie.secure 'auto' follows Fastify's trustProxy"
}
const COOKIE_HINTS: Readonly<Record<string, string>> = {
  expires: `use maxAge (${SECONDS})`,
  signed: 'the session cookie is always signed (or sealed by CookieStore)',
  priority: 'the session cookie carries no Priority attribute',
  encode: 'the session cookie value is always base64url',
  sameParty: 'SameParty was never standardised; use sameSite'
}

const DEFAULT_COOKIE: ResolvedCookie = {
  path: '/', domain: undefined, httpOnly: true, secure: 'auto', sameSite: 'lax', partitioned: false, maxAge: undefined
}

const GENERATE = 'generate one with: node -e "console.log(require(\'node:crypto\').randomBytes(32).toString(\'base64url\'))"'

/**
 * A secret whose length hides how little it varies: one character or a short pattern over
 * and over ('xxxx…', 'abcabc…', 'passwordpassword…'), also after or before a few others
 * ('my-secret-xxxx…', 'aaaa…1234567'). Length alone lets these through; a guesser tries
 * them first. Such a secret is a few characters of its own, the rest copies of earlier
 * text: the measure is how many characters do not continue a copy.
 */
export function weakSecret (secret: string): boolean {
  if (new Set(secret).size < MIN_DISTINCT_CHARACTERS) return true
  let own = 0
  for (let at = 0; at < secret.length && own <= MAX_PATTERN_LENGTH; ) {
    const copy = longestCopy(secret, at)
    if (copy >= MIN_COPY_LENGTH) {
      at += copy
    } else {
      own++
      at++
    }
  }
  return own <= MAX_PATTERN_LENGTH
}

// The longest run starting at `at` that repeats text starting earlier (and may overlap it,
// so 'xxxx' is one 'x' and a copy of it).
function longestCopy (text: string, at: number): number {
  let longest = 0
  for (let from = 0; from < at; from++) {
    let length = 0
    while (at + length < text.length && text[from + length] === text[at + length]) length++
    longest = Math.max(longest, length)
  }
  return longest
}

function secrets (value: unknown): string[] {
  const list = typeof value === 'string' ? [value] : value
  if (!Array.isArray(list) || list.length === 0) fail('secret', 'is required: a string or a non-empty array of strings')
  list.forEach((secret, i) => {
    if (typeof secret !== 'string' || secret.length < MIN_SECRET_LENGTH) {
      fail('secret', `entry ${i} must be a string of at least ${MIN_SECRET_LENGTH} characters; ${GENERATE}`)
    }
    if (weakSecret(secret)) fail('secret', `entry ${i} repeats a character or a short pattern; ${GENERATE}`)
  })
  return [...list]
}

function store (value: unknown): SessionStore | StatelessStore | undefined {
  if (value === undefined) return undefined
  if (value === null || typeof value !== 'object') fail('store', 'must be a session store object')
  if ((value as { stateless?: unknown }).stateless === true) {
    const codec = methods('store', value, ['encode', 'decode'], ['close'])
    integer('store maxCookieBytes', codec.maxCookieBytes ?? 0, 0, 1, Number.MAX_SAFE_INTEGER)
    if (codec.revocations !== undefined) sessionStore('store revocations', codec.revocations)
    return value as StatelessStore
  }
  return sessionStore('store', value)
}

function userKey (value: unknown, secretList: string[], chosen: SessionStore | StatelessStore | undefined): UserDigest | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'function' && (typeof value !== 'string' || value === '' || value === '__proto__')) {
    fail('userKey', 'must be a session key (a non-empty string) or a function of the session data')
  }
  if (chosen !== undefined && isStateless(chosen) && chosen.revocations === undefined) {
    fail('userKey', 'needs a store that can end sessions: give CookieStore a revocations store (new CookieStore({ revocations }))')
  }
  return new UserDigest(secretList, value as UserKey)
}

export function isStateless (store: SessionStore | StatelessStore): store is StatelessStore {
  return 'stateless' in store && store.stateless
}

function attribute (name: string, value: unknown, fallback: string | undefined): string | undefined {
  if (value === undefined) return fallback
  if (typeof value !== 'string' || value === '' || !ATTRIBUTE.test(value)) {
    fail(name, 'must be a non-empty string without spaces, semicolons or control characters')
  }
  return value
}

function secure (name: string, value: unknown, fallback: boolean | 'auto'): boolean | 'auto' {
  if (value === undefined) return fallback
  if (value !== 'auto' && typeof value !== 'boolean') fail(name, "must be true, false or 'auto'")
  return value
}

// `label` names the option in errors: 'cookie' at registration, 'session.options()' per response.
function cookie (value: unknown, base: ResolvedCookie, label: string): ResolvedCookie {
  const given = plainObject(label, value)
  knownKeys(`${label}.`, given, COOKIE_KEYS, COOKIE_HINTS)
  const path = attribute(`${label}.path`, given.path, base.path) as string
  if (!path.startsWith('/')) fail(`${label}.path`, "must start with '/'")
  const resolved: ResolvedCookie = {
    path,
    domain: attribute(`${label}.domain`, given.domain, base.domain),
    httpOnly: bool(`${label}.httpOnly`, given.httpOnly, base.httpOnly),
    secure: secure(`${label}.secure`, given.secure, base.secure),
    sameSite: oneOf(`${label}.sameSite`, given.sameSite, ['lax', 'strict', 'none'], base.sameSite),
    partitioned: bool(`${label}.partitioned`, given.partitioned, base.partitioned),
    maxAge: seconds(`${label}.maxAge`, given.maxAge, base.maxAge, MAX_COOKIE_SECONDS)
  }
  if (resolved.secure === false && (resolved.sameSite === 'none' || resolved.partitioned)) {
    fail(`${label}.secure`, "cannot be false with sameSite 'none' or partitioned: browsers drop such cookies")
  }
  return resolved
}

// Cookie name prefixes, longest first, and what browsers require of a cookie that has one.
const PREFIXES = [
  { prefix: '__Host-Http-', host: true, httpOnly: true },
  { prefix: '__Host-', host: true, httpOnly: false },
  { prefix: '__Secure-', host: false, httpOnly: false },
  { prefix: '__Http-', host: false, httpOnly: true }
] as const

/**
 * Browsers keep a `__Secure-` cookie only with Secure, and a `__Host-` one only with Secure,
 * `Path=/` and no Domain, which is what stops a sibling subdomain from planting its own
 * session cookie (cookie tossing); `__Http-` and `__Host-Http-` add HttpOnly. Browsers match
 * the prefix in any case (`__host-` too), so this does. Options that contradict the name's
 * prefix are refused; `secure: 'auto'` becomes true, since the prefix leaves no choice.
 */
function prefixed (cookieName: string, resolved: ResolvedCookie, label: string): ResolvedCookie {
  const name = cookieName.toLowerCase()
  const rule = PREFIXES.find(({ prefix }) => name.startsWith(prefix.toLowerCase()))
  if (rule === undefined) return resolved
  const named = `for a cookie named ${rule.prefix}…`
  if (resolved.secure === false) fail(`${label}.secure`, `cannot be false ${named}: browsers drop it`)
  if (rule.httpOnly && !resolved.httpOnly) fail(`${label}.httpOnly`, `cannot be false ${named}: browsers drop it`)
  if (rule.host && resolved.path !== '/') fail(`${label}.path`, `must be '/' ${named}`)
  if (rule.host && resolved.domain !== undefined) fail(`${label}.domain`, `must not be set ${named}`)
  return { ...resolved, secure: true }
}

// Every attribute a Set-Cookie line can carry (@fastify/cookie's serialize options): the keys
// session.options() checks, supported or not.
const COOKIE_ATTRIBUTES = new Set<string>([...COOKIE_KEYS, 'expires', 'signed', 'priority', 'encode', 'sameParty'])

/**
 * `session.options()`: cookie attributes for one response, checked like the registration's.
 * Keys that are no cookie attribute are ignored: plugins pass their own options along
 * (@fastify/csrf-protection's `generateCsrf({ userInfo })` hands them all to options()).
 */
export function overrideCookie (base: ResolvedCookie, overrides: unknown, cookieName: string): ResolvedCookie {
  const given = plainObject('session.options()', overrides)
  const attributes = Object.fromEntries(Object.entries(given).filter(([key]) => COOKIE_ATTRIBUTES.has(key)))
  return prefixed(cookieName, cookie(attributes, base, 'session.options()'), 'session.options()')
}

function cryptoOptions (value: unknown): Required<SessionCryptoOptions> {
  const given = plainObject('crypto', value)
  knownKeys('crypto.', given, ['offload', 'threads'])
  return {
    offload: oneOf('crypto.offload', given.offload, ['auto', 'always', 'never'], 'never'),
    threads: integer('crypto.threads', given.threads, 1, 1, 64)
  }
}

const CSRF_KEYS = ['trustedOrigins', 'reportOnly', 'token'] as const
const ORIGIN_FORM = /^[a-z][a-z0-9+.-]*:\/\/[^/?#@\s]+$/i
const ORIGIN_REASON = 'must be an origin, scheme://host[:port], with no path (not even a trailing /)'

// An Origin header is compared as a string, so a trusted origin is kept in the form browsers
// send: URL lower-cases it and drops a default port (https://Example.com:443 → https://example.com).
function trustedOrigin (name: string, value: unknown): string {
  if (typeof value !== 'string' || !ORIGIN_FORM.test(value) || !URL.canParse(value)) fail(name, ORIGIN_REASON)
  const { origin } = new URL(value)
  // Schemes other than http(s) have an opaque origin in URL's model; browsers still send them as written.
  return origin === 'null' ? value.toLowerCase() : origin
}

function trustedOrigins (value: unknown): ReadonlySet<string> {
  if (value === undefined) return new Set()
  if (!Array.isArray(value)) fail('csrf.trustedOrigins', 'must be an array of origins such as https://app.example.com')
  return new Set(value.map((origin, i) => trustedOrigin(`csrf.trustedOrigins[${i}]`, origin)))
}

function csrfOptions (value: unknown): ResolvedCsrf | undefined {
  if (value === false) return undefined
  const given = plainObject('csrf', value === true ? undefined : value)
  knownKeys('csrf.', given, CSRF_KEYS)
  return {
    trustedOrigins: trustedOrigins(given.trustedOrigins),
    reportOnly: bool('csrf.reportOnly', given.reportOnly, false),
    token: bool('csrf.token', given.token, false)
  }
}

// `false`, or `{ reportOnly, token }`; anything else on a registration with `csrf: false` would
// silently do nothing, so it is refused.
function checkRouteCsrf (value: unknown, route: string, csrfOn: boolean): void {
  const name = `config.session.csrf of ${route}`
  if (value === undefined || value === false) return
  if (value === true) fail(name, 'must be false or an object { reportOnly, token }')
  const given = plainObject(name, value)
  for (const key of Object.keys(given)) {
    if (key !== 'reportOnly' && key !== 'token') fail(`config.session.csrf.${key} of ${route}`, 'is not a known route option')
    bool(`config.session.csrf.${key} of ${route}`, given[key], false)
  }
  if (!csrfOn) fail(name, 'has no effect: the plugin was registered with csrf: false')
}

/** Per-route settings, `config: { session: ... }`, checked when the route is added. */
export function checkRouteConfig (value: unknown, route: string, csrfOn = true): void {
  if (value === undefined || typeof value === 'boolean') return
  const given = plainObject(`config.session of ${route}`, value)
  for (const key of Object.keys(given)) {
    if (key !== 'conflict' && key !== 'csrf') fail(`config.session.${key} of ${route}`, 'is not a known route option')
  }
  oneOf(`config.session.conflict of ${route}`, given.conflict, ['merge', 'error', 'overwrite'], 'merge')
  checkRouteCsrf(given.csrf, route, csrfOn)
}

/** Validates registration options once and fills in every default. */
export function resolveOptions (raw: unknown): ResolvedOptions {
  const opts = plainObject('options', raw) as Partial<FastifySessionsOptions>
  knownKeys('', opts, OPTION_KEYS, OPTION_HINTS)
  const cookieName = opts.cookieName ?? 'sid'
  if (typeof cookieName !== 'string' || !TOKEN.test(cookieName)) fail('cookieName', 'must be a valid cookie name token')
  const idle = seconds('idleTimeout', opts.idleTimeout, DEFAULT_IDLE_TIMEOUT)
  const resolved = {
    secrets: secrets(opts.secret),
    cookieName,
    cookie: prefixed(cookieName, cookie(opts.cookie, DEFAULT_COOKIE, 'cookie'), 'cookie'),
    idleMs: idle * 1000,
    absoluteMs: seconds('absoluteTimeout', opts.absoluteTimeout, DEFAULT_ABSOLUTE_TIMEOUT) * 1000,
    touchAfterMs: idle * 1000 * TOUCH_FRACTION,
    saveUninitialized: bool('saveUninitialized', opts.saveUninitialized, false),
    rolling: bool('rolling', opts.rolling, false),
    conflict: oneOf('conflict', opts.conflict, ['merge', 'error', 'overwrite'], 'merge'),
    encryptAtRest: bool('encryptAtRest', opts.encryptAtRest, false),
    crypto: cryptoOptions(opts.crypto),
    storeTimeoutMs: seconds('storeTimeout', opts.storeTimeout, DEFAULT_STORE_TIMEOUT) * 1000,
    csrf: csrfOptions(opts.csrf)
  }
  const given = store(opts.store)
  const users = userKey(opts.userKey, resolved.secrets, given)
  // The default store is created last, once every other option is known to be valid.
  return { ...resolved, users, store: given ?? new MemoryStore(), ownsStore: given === undefined }
}

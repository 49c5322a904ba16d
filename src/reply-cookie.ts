import type { FastifyReply, FastifyRequest } from 'fastify'
import { cookieAttributes, EXPIRED, type DefaultAttributes } from './cookie-line'
import { CookieTooLargeError } from './errors'
import { overrideCookie, type ResolvedCookie, type ResolvedOptions, type SessionCookieOptions } from './options'

/** What a reply's session cookie needs of its registration. */
export interface CookieContext {
  options: ResolvedOptions
  /** The session cookie's attributes when no response changes them. */
  attributes: DefaultAttributes
}

/**
 * The session cookie of one reply: its attributes (the registration's, or this response's
 * own after `session.options()`) and the one place that writes its Set-Cookie line. Created
 * only for replies that send a session cookie or change its attributes.
 */
export class ReplyCookie {
  #ctx: CookieContext
  #request: FastifyRequest
  #reply: FastifyReply
  #maxBytes: number
  // Set by options(): this response's attributes, already merged and checked.
  #overrides: ResolvedCookie | undefined
  #sent = false

  constructor (ctx: CookieContext, request: FastifyRequest, reply: FastifyReply, maxBytes: number) {
    this.#ctx = ctx
    this.#request = request
    this.#reply = reply
    this.#maxBytes = maxBytes
  }

  /** The attributes this reply's cookie gets. */
  get attributes (): ResolvedCookie {
    return this.#overrides ?? this.#ctx.options.cookie
  }

  /** Whether `session.options()` changed them, so the cookie must be sent again. */
  get overridden (): boolean {
    return this.#overrides !== undefined
  }

  override (cookie: SessionCookieOptions): void {
    this.#overrides = overrideCookie(this.attributes, cookie, this.#ctx.options.cookieName)
  }

  /** Sends `value` as the session cookie. */
  issue (value: string): void {
    this.#write(`${this.#ctx.options.cookieName}=${value}${this.#attributeLine()}`)
  }

  /** Tells the browser to delete the session cookie. */
  expire (): void {
    const cookie = this.attributes
    this.#write(`${this.#ctx.options.cookieName}=${cookieAttributes(cookie, this.#secure(cookie), 0)}${EXPIRED}`)
  }

  #write (line: string): void {
    // Browsers drop a cookie that is too large without a word: fail loudly instead. Name,
    // value and attributes are ASCII (validated, base64url), so characters are bytes.
    if (line.length > this.#maxBytes) throw new CookieTooLargeError(line.length, this.#maxBytes)
    // A cookie from an earlier save() (or a destroy()) is already in the headers: one
    // session cookie per response is enough.
    if (this.#sent) this.#dropEarlierLine()
    this.#reply.header('set-cookie', line)
    this.#sent = true
    if (!this.#reply.hasHeader('cache-control')) this.#reply.header('cache-control', 'no-store')
  }

  #secure (cookie: ResolvedCookie): boolean {
    return cookie.secure === 'auto' ? this.#request.protocol === 'https' : cookie.secure
  }

  #attributeLine (): string {
    const cookie = this.attributes
    const secure = this.#secure(cookie)
    if (this.#overrides !== undefined) return cookieAttributes(cookie, secure)
    const { attributes } = this.#ctx
    return secure ? attributes.secure : attributes.insecure
  }

  // Set-Cookie lines added to the reply's headers are kept by @fastify/cookie, which appends
  // the cookies of reply.setCookie() to them.
  #dropEarlierLine (): void {
    const header = this.#reply.getHeader('set-cookie') ?? []
    const prefix = this.#ctx.options.cookieName + '='
    const kept = [header].flat().map(String).filter((line) => !line.startsWith(prefix))
    this.#reply.removeHeader('set-cookie')
    if (kept.length > 0) this.#reply.header('set-cookie', kept)
  }
}

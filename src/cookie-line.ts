import type { ResolvedCookie } from './options'

const SAME_SITE = { lax: 'Lax', strict: 'Strict', none: 'None' } as const

/** What a cookie that must be deleted carries besides `Max-Age=0`, for browsers that predate Max-Age. */
export const EXPIRED = '; Expires=Thu, 01 Jan 1970 00:00:00 GMT'

/**
 * Everything after `name=value` in the session's Set-Cookie line.
 *
 * Written here rather than by @fastify/cookie's setCookie(): every part was validated
 * when the options were resolved, and the session cookie's value is base64url, so
 * nothing needs checking or encoding per response, and the usual line is one string
 * concatenation with attributes computed once per registration.
 */
export function cookieAttributes (cookie: ResolvedCookie, secure: boolean, maxAge = cookie.maxAge): string {
  let attributes = ''
  // Max-Age is whole seconds; rounding up never turns a lifetime into an instant deletion.
  if (maxAge !== undefined) attributes += `; Max-Age=${Math.ceil(maxAge)}`
  if (cookie.domain !== undefined) attributes += `; Domain=${cookie.domain}`
  attributes += `; Path=${cookie.path}`
  if (cookie.httpOnly) attributes += '; HttpOnly'
  if (secure) attributes += '; Secure'
  if (cookie.partitioned) attributes += '; Partitioned'
  return `${attributes}; SameSite=${SAME_SITE[cookie.sameSite]}`
}

/** The registration's attributes, without and with Secure (the session resolves `'auto'`). */
export interface DefaultAttributes {
  insecure: string
  secure: string
}

export function defaultAttributes (cookie: ResolvedCookie): DefaultAttributes {
  return { insecure: cookieAttributes(cookie, false), secure: cookieAttributes(cookie, true) }
}

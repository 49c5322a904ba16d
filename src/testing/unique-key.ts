import { randomBytes } from 'node:crypto'

/**
 * A fresh key shaped like the ones the plugin hands a store: a SHA-256 digest in base64url,
 * 43 characters. User digests have the same shape.
 */
export function uniqueKey (): string {
  return randomBytes(32).toString('base64url')
}

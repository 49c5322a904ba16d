import type { SessionRecord } from '../../src/store'

export { uniqueKey } from '../../src/testing'

/** A record created now that lives `ttlMs`, for a store's own edge-case tests. */
export function record (data: Record<string, unknown>, version = 1, ttlMs = 60_000): SessionRecord {
  const now = Date.now()
  return { data, version, createdAt: now, expiresAt: now + ttlMs }
}

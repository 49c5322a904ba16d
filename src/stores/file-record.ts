import { UnusableRecordError } from '../errors'
import { parseJson } from '../json'
import { readStart, type ReadBuffers } from './file-io'

// The record file of FileStore: one JSON header line (version, times, user), then the
// data's JSON, which holds no raw line feed. Writes and the sweeper read the header alone.

export interface Header {
  version: number
  createdAt: number
  expiresAt: number
  user?: string
}

/** The header line of a record file, or '' when there is none. */
export async function readHead (file: string, buffers: ReadBuffers): Promise<string> {
  // Headers are about 150 bytes; one read of 1 KiB holds any this store writes.
  return firstLine(await readStart(file, 1024, buffers))
}

/** The text before the first line feed; '' when there is none (not a record). */
export function firstLine (text: string): string {
  const split = text.indexOf('\n')
  return split < 0 ? '' : text.slice(0, split)
}

export function headerOf (line: string): Header | undefined {
  try {
    const { version, createdAt, expiresAt, user } = JSON.parse(line) as Partial<Header>
    if (!Number.isSafeInteger(version) || !Number.isFinite(createdAt) || !Number.isFinite(expiresAt)) return undefined
    if (user !== undefined && typeof user !== 'string') return undefined
    return user === undefined ? { version, createdAt, expiresAt } as Header : { version, createdAt, expiresAt, user } as Header
  } catch {
    return undefined
  }
}

// An expired record and an unreadable one count as missing for writes: a create replaces
// either, as the plugin deletes a record it cannot read.
export function live (header: Header | undefined): Header | undefined {
  return header !== undefined && header.expiresAt > Date.now() ? header : undefined
}

export function dataOf (text: string): Record<string, unknown> {
  try {
    return parseJson(text) as Record<string, unknown>
  } catch (err) {
    throw new UnusableRecordError(`its data is not JSON (${(err as Error).message})`)
  }
}

import { randomBytes } from 'node:crypto'
import { link, open, readFile, rename, unlink } from 'node:fs/promises'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'

// A lock across processes on one host, held in a lock file. Node has no flock(), so a lock
// file left by a process that died is a lease: once it is older than `staleMs` another
// process moves it aside and takes its place. Holders keep it for milliseconds.

export interface LockSettings {
  /** Age, in ms, past which a lock's holder counts as dead. */
  staleMs: number
  /** The wall clock the filesystem stamps mtimes with. */
  now: () => number
}

/** A lock this process holds: its file and the content that proves it is ours. */
export interface HeldLock {
  path: string
  token: string
}

/** A random name for a file of our own: 96 bits, so no two processes ever pick the same. */
export function randomName (): string {
  return randomBytes(12).toString('hex')
}

export function isMissing (err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === 'ENOENT'
}

/**
 * Takes the lock at `path`, waiting up to `waitMs` while a live process holds it (0: one
 * attempt). Resolves undefined when the wait ran out.
 */
export async function acquireLock (path: string, settings: LockSettings, waitMs: number): Promise<HeldLock | undefined> {
  const token = `${process.pid} ${randomName()}\n`
  const deadline = performance.now() + waitMs
  for (;;) {
    if (await createLock(path, token)) return { path, token }
    if (await removeStaleLock(path, settings)) continue
    if (performance.now() >= deadline) return undefined
    await sleep(1 + Math.random() * 19)
  }
}

// Created exclusively ('wx'), then the holder's token written into it. A lock seen empty is
// one being written: its fresh mtime keeps it from looking stale, and only its own holder,
// who wrote the token before using the lock, compares the content. Each file created or
// removed costs the kernel far more than a read or a write: this is one, where a token file
// linked into place is three.
async function createLock (path: string, token: string): Promise<boolean> {
  let handle
  try {
    handle = await open(path, 'wx', 0o600)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false
    throw err
  }
  try {
    await handle.writeFile(token)
    return true
  } catch (err) {
    await unlink(path).catch(() => {})
    throw err
  } finally {
    await handle.close()
  }
}

function ignoreMissing (err: unknown): void {
  if (!isMissing(err)) throw err
}

/**
 * Gives the lock up, unless another process took it over meanwhile: its lock stays. By
 * content, not by inode: a lock taken over may reuse the inode number of the one removed.
 */
export async function releaseLock (held: HeldLock): Promise<void> {
  const content = await readFile(held.path, 'utf8').catch(() => undefined)
  if (content === held.token) await unlink(held.path).catch(ignoreMissing)
}

/**
 * Removes the lock at `path` when its holder is presumed dead, and resolves whether the
 * lock is gone. Only one of several processes seeing the same stale lock wins the rename;
 * one that moved a lock other than the one it judged (taken over meanwhile) puts it back.
 */
export async function removeStaleLock (path: string, settings: LockSettings): Promise<boolean> {
  let seen: { content: string, mtimeMs: number }
  try {
    seen = await readLock(path)
  } catch (err) {
    if (isMissing(err)) return true
    throw err
  }
  if (settings.now() - seen.mtimeMs <= settings.staleMs) return false
  const aside = `${path}.${randomName()}.stale`
  try {
    await rename(path, aside)
  } catch (err) {
    if (isMissing(err)) return true
    throw err
  }
  if (await readFile(aside, 'utf8') !== seen.content) await link(aside, path).catch(() => {})
  await unlink(aside)
  return true
}

// One open file, so the content and the mtime belong to the same lock.
async function readLock (path: string): Promise<{ content: string, mtimeMs: number }> {
  const handle = await open(path, 'r')
  try {
    const { mtimeMs } = await handle.stat()
    return { content: await handle.readFile('utf8'), mtimeMs }
  } finally {
    await handle.close()
  }
}

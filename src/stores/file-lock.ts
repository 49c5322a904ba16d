import { randomBytes } from 'node:crypto'
import { link, rename, stat, unlink } from 'node:fs/promises'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { closeFile, inodeAt, inodeOf, isMissing, openFile, renameFile, unlinkFile, writeAll } from './file-io'

// A lock across processes on one host, held in a lock file created exclusively. Node has no
// flock(), so a lock file left by a process that died is a lease: once it is older than
// `staleMs` another process moves it aside and takes its place. Holders keep it for
// milliseconds. The lock file is also where the holder writes the new record: renaming it
// over the record publishes the record and gives the lock up in one step, so a write
// creates one file and renames it, the least an atomic replace can do.

export interface LockSettings {
  /** Age, in ms, past which a lock's holder counts as dead. */
  staleMs: number
  /** The wall clock the filesystem stamps mtimes with. */
  now: () => number
}

/**
 * A lock this process holds: its file, open, and that file's inode. While the file is
 * open the inode cannot be reused, so a lock file at `path` with another inode means the
 * lock was taken over (its holder looked dead). The inode is read while the holder goes on
 * with its work: it is needed only at the end.
 */
export interface HeldLock {
  path: string
  fd: number
  ino: Promise<number>
  /** Set once the lock file was renamed into place or removed. */
  done: boolean
}

/** A random name for a file of our own: 96 bits, so no two processes ever pick the same. */
export function randomName (): string {
  return randomBytes(12).toString('hex')
}

/**
 * Takes the lock at `path`, waiting up to `waitMs` while a live process holds it (0: one
 * attempt). Resolves undefined when the wait ran out.
 */
export async function acquireLock (path: string, settings: LockSettings, waitMs: number): Promise<HeldLock | undefined> {
  const deadline = performance.now() + waitMs
  for (;;) {
    const held = await createLock(path)
    if (held !== undefined) return held
    if (await removeStaleLock(path, settings)) continue
    if (performance.now() >= deadline) return undefined
    await sleep(1 + Math.random() * 3)
  }
}

async function createLock (path: string): Promise<HeldLock | undefined> {
  let fd
  try {
    fd = await openFile(path, 'wx', 0o600)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return undefined
    throw err
  }
  const ino = inodeOf(fd)
  // Awaited by whoever ends the lock; until then a failure must not count as unhandled.
  ino.catch(() => {})
  return { path, fd, ino, done: false }
}

/** Writes `text` into the held lock's file, which holds nothing before. */
export function writeLock (held: HeldLock, text: string): Promise<void> {
  return writeAll(held.fd, Buffer.from(text, 'utf8'))
}

async function stillHeld (held: HeldLock): Promise<boolean> {
  const [current, ino] = await Promise.all([inodeAt(held.path), held.ino])
  return current === ino
}

/**
 * Publishes what the holder wrote into its lock file as `target`, which also gives the lock
 * up, once `writing` is done. Refuses when the lock was taken over meanwhile: the file at
 * `path` is someone else's. The check runs alongside the write: a takeover needs the lock to
 * look stale for seconds, so the look that matters is the one just before the rename.
 */
export async function commitLock (held: HeldLock, target: string, writing?: Promise<void>): Promise<void> {
  const [ours] = await Promise.all([stillHeld(held), writing])
  if (!ours) throw new Error('the session lock was taken over before the write completed')
  await renameFile(held.path, target)
  held.done = true
}

/**
 * Gives the lock up, unless another process took it over meanwhile: its lock stays. The
 * file is closed only then (its inode must not be reused while the lock may be checked),
 * and nobody waits for the close: the lock is given up by then.
 */
export async function releaseLock (held: HeldLock): Promise<void> {
  try {
    // A lock that cannot be removed is taken over after staleMs, like a dead holder's.
    if (!held.done && await stillHeld(held)) await unlinkFile(held.path).catch(() => {})
    held.done = true
  } finally {
    closeFile(held.fd)
  }
}

/**
 * Removes the lock at `path` when its holder is presumed dead, and resolves whether the
 * lock is gone. Only one of several processes seeing the same stale lock wins the rename;
 * one that moved a lock other than the one it judged (taken over meanwhile) puts it back.
 * A live holder checks its inode before it publishes, so even a lock removed by mistake
 * (an inode number reused) costs a failed write, never a wrong record.
 */
export async function removeStaleLock (path: string, settings: LockSettings): Promise<boolean> {
  let seen
  try {
    seen = await stat(path)
  } catch (err) {
    if (isMissing(err)) return true
    throw err
  }
  if (seen.isDirectory()) throw Object.assign(new Error(`${path} is a directory`), { code: 'EISDIR' })
  if (settings.now() - seen.mtimeMs <= settings.staleMs) return false
  const aside = `${path}.${randomName()}.stale`
  try {
    await rename(path, aside)
  } catch (err) {
    if (isMissing(err)) return true
    throw err
  }
  if ((await stat(aside)).ino !== seen.ino) await link(aside, path).catch(() => {})
  await unlink(aside)
  return true
}

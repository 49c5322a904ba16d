import { close, fstat, fsync, open, read, rename, stat, unlink, write } from 'node:fs'

// The file operations of FileStore, on node:fs's callback API. Every one is a trip through
// libuv's thread pool, four threads shared by the whole process, so a write's latency under
// load is mostly time queued behind other requests' trips: the store makes as few as it can,
// and keeps the ones nobody waits for (closing a file it is done with) off the path of the
// request. FileHandle (fs/promises) would cost an object per open file and a promise per
// call on top of the same trips; these wrappers cost one promise per trip. The functions of
// node:fs are looked up at each call, so a test can wrap them to stop between two of them.

type Callback<T> = (err: NodeJS.ErrnoException | null, value: T) => void

function promised<T> (start: (done: Callback<T>) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    start((err, value) => { if (err === null) resolve(value); else reject(err) })
  })
}

export function isMissing (err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === 'ENOENT'
}

export function openFile (path: string, flags: string, mode?: number): Promise<number> {
  return promised((done) => open(path, flags, mode, done))
}

/**
 * Closes `fd` without anyone waiting for it: called once a file has given what it was
 * opened for (read, or renamed into place), when its close can no longer change an outcome.
 * A close that fails leaves nothing to undo.
 */
export function closeFile (fd: number): void {
  close(fd, ignore)
}

export function readAt (fd: number, buffer: Buffer, offset: number, length: number, position: number): Promise<number> {
  return promised((done) => read(fd, buffer, offset, length, position, done))
}

/** Writes all of `buffer` at the start of the file; a write may take several calls. */
export async function writeAll (fd: number, buffer: Buffer): Promise<void> {
  let written = 0
  while (written < buffer.length) {
    written += await promised<number>((done) => write(fd, buffer, written, buffer.length - written, written, done))
  }
}

export function syncFile (fd: number): Promise<void> {
  return promised((done) => fsync(fd, (err) => done(err, undefined)))
}

export function inodeOf (fd: number): Promise<number> {
  return promised((done) => fstat(fd, (err, stats) => done(err, stats?.ino)))
}

/** The inode of the file at `path`, or undefined when it cannot be looked at (gone). */
export function inodeAt (path: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    stat(path, (err, stats) => resolve(err === null ? stats.ino : undefined))
  })
}

export function renameFile (from: string, to: string): Promise<void> {
  return promised((done) => rename(from, to, (err) => done(err, undefined)))
}

/** Deletes the file at `path`; a missing one counts as deleted. */
export function unlinkFile (path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    unlink(path, (err) => { if (err === null || isMissing(err)) resolve(); else reject(err) })
  })
}

// Records are a few hundred bytes: one read of this size holds nearly all of them, so a
// read costs two trips (open, read), and only a larger record a look at its size.
const FIRST_READ = 16 * 1024

/**
 * The whole text of the file at `path`, or undefined when there is none. Reads go to the
 * inode opened, which a writer replaces by rename() and never changes in place: the text is
 * one record, whole.
 */
export async function readText (path: string): Promise<string | undefined> {
  let fd
  try {
    fd = await openFile(path, 'r')
  } catch (err) {
    if (isMissing(err)) return undefined
    throw err
  }
  try {
    let buffer = Buffer.allocUnsafe(FIRST_READ)
    let length = await readAt(fd, buffer, 0, buffer.length, 0)
    if (length === buffer.length) {
      const size = await promised<number>((done) => fstat(fd as number, (err, stats) => done(err, stats?.size)))
      const whole = Buffer.allocUnsafe(Math.max(size, length) + 1)
      buffer.copy(whole, 0, 0, length)
      buffer = whole
      for (let got = 1; got > 0 && length < size;) {
        got = await readAt(fd, buffer, length, buffer.length - length, length)
        length += got
      }
    }
    return buffer.toString('utf8', 0, length)
  } finally {
    closeFile(fd)
  }
}

/** Up to `length` bytes from the start of the file at `path`; '' when there is none. */
export async function readStart (path: string, length: number): Promise<string> {
  let fd
  try {
    fd = await openFile(path, 'r')
  } catch (err) {
    if (isMissing(err)) return ''
    throw err
  }
  try {
    const buffer = Buffer.allocUnsafe(length)
    return buffer.toString('utf8', 0, await readAt(fd, buffer, 0, length, 0))
  } finally {
    closeFile(fd)
  }
}

/** Flushes a directory's entries (a rename into it) to the disk. */
export async function syncDirectory (dir: string): Promise<void> {
  const fd = await openFile(dir, 'r')
  try {
    await syncFile(fd)
  } finally {
    closeFile(fd)
  }
}

function ignore (): void {}

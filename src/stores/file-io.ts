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

/** `path` opened for reading, or undefined when there is no such file. */
async function openIfPresent (path: string): Promise<number | undefined> {
  try {
    return await openFile(path, 'r')
  } catch (err) {
    if (isMissing(err)) return undefined
    throw err
  }
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
const READ_BUFFER = 4096
// Buffers kept for reads to come: one per read under way, up to this many.
const KEPT_BUFFERS = 64

/**
 * The buffers a store reads files into, each used again once its read is done. A buffer
 * allocated per read is memory outside V8's heap that V8 must collect: measured in one
 * benchmark run, a fresh 16 KiB buffer per read cost the write scenario about 10% more
 * server CPU per request and a longer p99 than these, and more on a loaded machine.
 */
export class ReadBuffers {
  #free: Buffer[] = []

  take (): Buffer {
    return this.#free.pop() ?? Buffer.allocUnsafeSlow(READ_BUFFER)
  }

  give (buffer: Buffer): void {
    if (this.#free.length < KEPT_BUFFERS) this.#free.push(buffer)
  }
}

/**
 * The whole text of the file at `path`, or undefined when there is none. Reads go to the
 * inode opened, which a writer replaces by rename() and never changes in place: the text is
 * one record, whole.
 */
export async function readText (path: string, buffers: ReadBuffers): Promise<string | undefined> {
  const fd = await openIfPresent(path)
  if (fd === undefined) return undefined
  const first = buffers.take()
  try {
    const length = await readAt(fd, first, 0, first.length, 0)
    return length < first.length ? first.toString('utf8', 0, length) : await readRest(fd, first)
  } finally {
    buffers.give(first)
    closeFile(fd)
  }
}

// A record larger than the first read: its size, then the rest in one read (a file that
// grew meanwhile is no record of this store's, and reads as far as its size said).
async function readRest (fd: number, first: Buffer): Promise<string> {
  const size = await promised<number>((done) => fstat(fd, (err, stats) => done(err, stats?.size)))
  const whole = Buffer.allocUnsafeSlow(Math.max(size, first.length))
  first.copy(whole)
  let length = first.length
  for (let got = 1; got > 0 && length < whole.length;) {
    got = await readAt(fd, whole, length, whole.length - length, length)
    length += got
  }
  return whole.toString('utf8', 0, length)
}

/** Up to `length` bytes (at most a read buffer's) from the start of the file at `path`; '' when there is none. */
export async function readStart (path: string, length: number, buffers: ReadBuffers): Promise<string> {
  const fd = await openIfPresent(path)
  if (fd === undefined) return ''
  const buffer = buffers.take()
  try {
    return buffer.toString('utf8', 0, await readAt(fd, buffer, 0, Math.min(length, buffer.length), 0))
  } finally {
    buffers.give(buffer)
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

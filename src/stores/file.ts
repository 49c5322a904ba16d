import { mkdir, readdir, rm, stat } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { InvalidStoreKeyError, StoreUnavailableError, UnusableRecordError } from '../errors'
import { NewestVersions } from '../newest-versions'
import { DEFAULT_STORE_TIMEOUT } from '../options'
import type { SessionRecord, SessionStore } from '../store'
import { bool, fail, knownKeys, plainObject, seconds, spreadDelay } from '../validate'
import { isMissing, ReadBuffers, readText, syncDirectory, syncFile, unlinkFile } from './file-io'
import { acquireLock, commitLock, releaseLock, removeStaleLock, writeLock, type HeldLock, type LockSettings } from './file-lock'
import { dataOf, firstLine, headerOf, live, readHead, type Header } from './file-record'

export interface FileStoreOptions {
  /** The directory of the sessions, created (mode 0700) when missing. On a local filesystem. */
  dir: string
  /** Flush each write to the disk before it counts as done. Default false. */
  fsync?: boolean
  /** Seconds after which the lock of a writer presumed dead is taken over. Default 10. */
  lockStale?: number
  /** Seconds between sweeps of expired files (randomized), or false. Default 600. */
  sweepInterval?: number | false
  /** Where a failed sweep goes. Default: a process warning. */
  onError?: (err: Error) => void
}

// The keys the plugin hands a store are SHA-256 digests in base64url; a file name is built
// from nothing else, so no key can name a path outside the directory.
const KEY = /^[A-Za-z0-9_-]{43}$/
const SHARD = /^[A-Za-z0-9_-]{2}$/
const DATA_FILE = /^[A-Za-z0-9_-]{43}\.json$/
const LOCK_FILE = /^[A-Za-z0-9_-]{43}\.lock$/
// The plugin cannot tell a store that a request gave up on it: a write waits for a
// session's lock as long as a request waits by default, then fails without writing.
const LOCK_WAIT_MS = DEFAULT_STORE_TIMEOUT * 1000
// Lock ages compare mtimes the kernel stamps from the wall clock; Date.now as this module
// found it, so that an application (a test) moving its own clock makes no live lock stale.
const wallClock = Date.now

function warn (err: Error): void {
  process.emitWarning(`fastify-sessions: FileStore could not sweep expired sessions: ${err.message}`, 'FastifySessionsWarning')
}

function keyFault (key: unknown): string | undefined {
  if (typeof key !== 'string') return `a value of type ${key === null ? 'null' : typeof key}`
  if (key.length !== 43) return `a string of ${key.length} characters`
  return KEY.test(key) ? undefined : 'characters outside base64url'
}

/**
 * Sessions as files in a directory shared by the processes of one host. A record is
 * `<dir>/<first two characters of the key>/<key>.json`: a JSON header line, then the data's
 * JSON. The compare-and-set runs under the session's lock file, `<key>.lock`, into which the
 * new record is written before it is renamed over the record (see file-lock.ts), so a reader
 * (never locked) sees the old or the new file whole.
 */
export class FileStore implements SessionStore {
  #dir: string
  #fsync: boolean
  #lock: LockSettings
  #sweepMs: number | false
  #onError: (err: Error) => void
  // Directories this store made or found: a write checks for them once, not every time.
  #dirs = new Set<string>()
  #published = new NewestVersions()
  #buffers = new ReadBuffers()
  #timer: NodeJS.Timeout | undefined
  #sweeping: Promise<void> | undefined
  #closed = false

  constructor (options: FileStoreOptions) {
    const given = plainObject('FileStore options', options)
    knownKeys('FileStore ', given, ['dir', 'fsync', 'lockStale', 'sweepInterval', 'onError'], {
      path: 'the option is dir',
      lockTimeout: "how long a request waits for the store is the plugin's storeTimeout option (seconds)",
      ttl: "a session's lifetime is the plugin's idleTimeout and absoluteTimeout options (seconds)"
    })
    if (typeof given.dir !== 'string' || given.dir === '') fail('FileStore dir', 'must be a directory path')
    if (given.onError !== undefined && typeof given.onError !== 'function') fail('FileStore onError', 'must be a function')
    const sweep = given.sweepInterval === false ? false : seconds('FileStore sweepInterval', given.sweepInterval, 600)
    this.#dir = resolve(given.dir)
    this.#fsync = bool('FileStore fsync', given.fsync, false)
    this.#lock = { staleMs: seconds('FileStore lockStale', given.lockStale, 10) * 1000, now: wallClock }
    this.#sweepMs = sweep === false ? false : sweep * 1000
    this.#onError = (given.onError as FileStoreOptions['onError']) ?? warn
    this.#schedule()
  }

  async get (key: string): Promise<SessionRecord | undefined> {
    const text = await readText(this.#file(key), this.#buffers)
    if (text === undefined) return undefined
    const split = text.indexOf('\n')
    const header = headerOf(firstLine(text))
    if (header === undefined) throw new UnusableRecordError('its file is not one FileStore wrote')
    if (header.expiresAt <= Date.now()) return undefined
    const data = dataOf(text.slice(split + 1))
    this.#published.saw(key, header.version)
    return { ...header, data }
  }

  async set (key: string, record: SessionRecord, expectedVersion: number): Promise<boolean> {
    const { version, createdAt, expiresAt, user } = record
    const text = JSON.stringify({ version, createdAt, expiresAt, user }) + '\n' + JSON.stringify(record.data)
    // A write that expects another version than the last this store read or wrote of the
    // key is most likely a loser: the plugin queues a session's writes, and the one queued
    // behind another holds the copy from before it. Its header is read first without the lock,
    // and a version other than the one expected answers false then and there: the read sees
    // one published record, whole, so that is the record the compare-and-set found. Anything
    // else goes on under the lock as usual. Reads count too, so that a session written by
    // turns from several processes costs no extra read.
    const last = this.#published.get(key)
    if (last !== undefined && last !== expectedVersion && await this.#storedVersion(this.#file(key)) !== expectedVersion) return false
    const stored = await this.#locked(key, 'write', async (file, lock) => {
      if (await this.#storedVersion(file) !== expectedVersion) return false
      await this.#publish(lock, file, text)
      return true
    })
    if (stored) this.#published.saw(key, version)
    return stored
  }

  async destroy (key: string): Promise<void> {
    this.#published.forget(key)
    await this.#locked(key, 'delete', (file) => unlinkFile(file))
  }

  // The data is copied as it is stored, so only the header is rewritten.
  async touch (key: string, expiresAt: number): Promise<boolean> {
    return await this.#locked(key, 'touch', async (file, lock) => {
      const text = await readText(file, this.#buffers) ?? ''
      const header = live(headerOf(firstLine(text)))
      if (header === undefined) return false
      await this.#publish(lock, file, JSON.stringify({ ...header, expiresAt }) + text.slice(text.indexOf('\n')))
      return true
    })
  }

  /**
   * Deletes expired and unreadable session files, and temporary and lock files left by
   * processes that died, and resolves how many sessions it deleted. While another process
   * sweeps the directory it deletes nothing. The store runs it on its own timer unless
   * `sweepInterval: false`.
   */
  async sweep (): Promise<number> {
    await mkdir(this.#dir, { recursive: true, mode: 0o700 })
    const held = await acquireLock(join(this.#dir, '.sweep.lock'), this.#lock, 0)
    if (held === undefined) return 0
    try {
      let deleted = 0
      for (const shard of await readdir(this.#dir, { withFileTypes: true })) {
        if (SHARD.test(shard.name) && shard.isDirectory() && !this.#closed) deleted += await this.#sweepShard(join(this.#dir, shard.name))
      }
      return deleted
    } finally {
      await releaseLock(held)
    }
  }

  /** Stops sweeping and waits for a sweep under way; the files stay. */
  async close (): Promise<void> {
    this.#closed = true
    clearTimeout(this.#timer)
    await this.#sweeping
  }

  // An expired record and an unreadable one count as missing (version 0).
  async #storedVersion (file: string): Promise<number> {
    return (await this.#liveHeader(file))?.version ?? 0
  }

  async #liveHeader (file: string): Promise<Header | undefined> {
    return live(headerOf(await readHead(file, this.#buffers)))
  }

  #file (key: string): string {
    const fault = keyFault(key)
    if (fault !== undefined) throw new InvalidStoreKeyError('FileStore', fault)
    return join(this.#dir, key.slice(0, 2), `${key}.json`)
  }

  // Runs `task` holding the session's lock. Directories are made on every write rather
  // than remembered, so a directory removed under a running store comes back.
  async #locked<T> (key: string, operation: string, task: (file: string, lock: HeldLock) => Promise<T>): Promise<T> {
    const file = this.#file(key)
    try {
      return await this.#lockedIn(file, operation, task)
    } catch (err) {
      // A directory removed behind the store's back (a cleanup job, a test): make it again.
      // Nothing is published before the final rename, so one more attempt is safe.
      if (!isMissing(err)) throw err
      this.#dirs.clear()
      return await this.#lockedIn(file, operation, task)
    }
  }

  async #ensureDir (dir: string): Promise<void> {
    if (this.#dirs.has(dir)) return
    await mkdir(dir, { recursive: true, mode: 0o700 })
    this.#dirs.add(dir)
  }

  async #lockedIn<T> (file: string, operation: string, task: (file: string, lock: HeldLock) => Promise<T>): Promise<T> {
    await this.#ensureDir(dirname(file))
    const held = await acquireLock(file.replace(/json$/, 'lock'), this.#lock, LOCK_WAIT_MS)
    if (held === undefined) throw new StoreUnavailableError(operation, `found the session locked by another writer for ${LOCK_WAIT_MS / 1000} s`)
    try {
      return await task(file, held)
    } finally {
      await releaseLock(held)
    }
  }

  // The new record goes into the lock file, in the record's own directory, which is renamed
  // over the record: rename() is atomic, so readers and a crash at any point see the old
  // record or the new one whole, never a mix; and the rename gives the lock up.
  async #publish (lock: HeldLock, file: string, text: string): Promise<void> {
    const written = writeLock(lock, text)
    await commitLock(lock, file, this.#fsync ? written.then(() => syncFile(lock.fd)) : written)
    if (this.#fsync) await syncDirectory(dirname(file))
  }

  async #sweepShard (shard: string): Promise<number> {
    let deleted = 0
    for (const name of await readdir(shard)) {
      const path = join(shard, name)
      if (DATA_FILE.test(name)) deleted += await this.#sweepRecord(path)
      else if (LOCK_FILE.test(name)) await removeStaleLock(path, this.#lock)
      else if (name.endsWith('.stale')) await this.#removeOld(path, this.#lock.staleMs)
    }
    return deleted
  }

  // Checked again under the session's lock: a writer may have brought it back meanwhile.
  async #sweepRecord (file: string): Promise<number> {
    if (await this.#liveHeader(file) !== undefined) return 0
    const held = await acquireLock(file.replace(/json$/, 'lock'), this.#lock, 0)
    if (held === undefined) return 0
    try {
      if (await this.#liveHeader(file) !== undefined) return 0
      await rm(file, { force: true })
      return 1
    } finally {
      await releaseLock(held)
    }
  }

  // Temporary files live for a write; token files as long as a wait for a lock.
  async #removeOld (path: string, ageMs: number): Promise<void> {
    const mtimeMs = await stat(path).then((s) => s.mtimeMs, () => Infinity)
    if (wallClock() - mtimeMs > ageMs) await rm(path, { force: true })
  }

  // A chain of timeouts, so passes never overlap; each delay is drawn from half to one and
  // a half times the interval, so that processes started together spread out.
  #schedule (): void {
    if (this.#sweepMs === false || this.#closed) return
    this.#timer = setTimeout(() => this.#sweepPass(), spreadDelay(this.#sweepMs)).unref()
  }

  #sweepPass (): Promise<void> {
    this.#sweeping = this.sweep().then(() => {}, (err: unknown) => {
      this.#onError(err instanceof Error ? err : new Error(String(err)))
    }).finally(() => {
      this.#sweeping = undefined
      this.#schedule()
    })
    return this.#sweeping
  }
}

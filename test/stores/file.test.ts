import t from 'tap'
import fs, { existsSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { mkdir, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FileStore, type FileStoreOptions } from '../../src/index'
import { acquireLock, commitLock, releaseLock, removeStaleLock, writeLock } from '../../src/stores/file-lock'
import { conformance } from '../../src/testing'
import { heldTimers } from '../helpers/held-timers'
import { record, uniqueKey } from '../helpers/record'

// FileStore on temporary directories: the contract, the layout on disk, keys that are no
// digest, locks left by dead writers, and the sweeper with its timer held by the test.

const parent = mkdtempSync(join(tmpdir(), 'fastify-sessions-file-'))
t.teardown(() => rmSync(parent, { recursive: true, force: true }))
let sequence = 0
/** A directory path no other test uses, not created yet. */
function freshDir (): string {
  return join(parent, `d${sequence++}`)
}

function store (options: Partial<FileStoreOptions> = {}): FileStore {
  return new FileStore({ dir: freshDir(), sweepInterval: false, ...options })
}

/** Every path under `dir`, relative, sorted. */
async function tree (dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true }).catch(() => [])
  return entries.sort()
}

const mode = async (path: string): Promise<number> => (await stat(path)).mode & 0o777
const shardOf = (dir: string, key: string): string => join(dir, key.slice(0, 2))
/** Sets a file's mtime `ms` into the past. */
const age = async (path: string, ms: number): Promise<void> => { const then = (Date.now() - ms) / 1000; await utimes(path, then, then) }

conformance({
  test: (name, fn) => t.test(name, fn),
  name: 'FileStore',
  store: () => store()
})

t.test('rejects bad options by name; constructing touches no file', async (t) => {
  const bad: Array<[string, unknown]> = [
    ['options', null],
    ['dir', {}],
    ['dir', { dir: '' }],
    ['dir', { dir: 7 }],
    ['fsync', { dir: 'x', fsync: 'yes' }],
    ['lockStale', { dir: 'x', lockStale: 0 }],
    ['lockStale', { dir: 'x', lockStale: 10_000_000 }],
    ['sweepInterval', { dir: 'x', sweepInterval: true }],
    ['sweepInterval', { dir: 'x', sweepInterval: -1 }],
    ['onError', { dir: 'x', onError: 'log' }],
    ['path', { dir: 'x', path: 'y' }],
    ['lockTimeout', { dir: 'x', lockTimeout: 1 }],
    ['fsycn', { dir: 'x', fsycn: true }]
  ]
  for (const [i, [name, options]] of bad.entries()) {
    t.throws(() => new FileStore(options as FileStoreOptions), {
      code: 'FST_SESS_INVALID_OPTION', message: new RegExp(`"FileStore ${name}"`)
    }, `bad ${name} #${i}`)
  }
  t.throws(() => new FileStore({ dir: 'x', fsycn: true } as unknown as FileStoreOptions), { message: /did you mean "fsync"/ })
  t.throws(() => new FileStore({ dir: 'x', lockTimeout: 1 } as unknown as FileStoreOptions), { message: /storeTimeout/ })
  const dir = freshDir()
  const quiet = new FileStore({ dir, fsync: true, lockStale: 1, sweepInterval: 60 })
  await quiet.close()
  await t.rejects(stat(dir), { code: 'ENOENT' }, 'no directory before the first write')
})

t.test('a key that is no digest is refused before it reaches a path', async (t) => {
  const dir = freshDir()
  const files = new FileStore({ dir, sweepInterval: false })
  const outside = join(parent, 'outside')
  await writeFile(outside, 'precious')
  const before = await tree(parent)
  const keys: unknown[] = ['', '..', '.', '/', '../outside', '../../etc/passwd', 'a/b', 'a'.repeat(42), 'a'.repeat(44),
    '../' + 'a'.repeat(40), 'a'.repeat(41) + '/.', '.'.repeat(43), 'a'.repeat(42) + '=', 'a'.repeat(42) + '\u0000',
    'é'.repeat(43), 42, undefined, null, { length: 43 }]
  for (const key of keys) {
    const label = JSON.stringify(key) ?? String(key)
    const refused = { code: 'FST_SESS_INVALID_STORE_KEY', message: /FileStore accepts only SHA-256 digests/ }
    await t.rejects(files.get(key as string), refused, `get ${label}`)
    await t.rejects(files.set(key as string, record({}), 0), refused, `set ${label}`)
    await t.rejects(files.touch(key as string, Date.now() + 1000), refused, `touch ${label}`)
    await t.rejects(files.destroy(key as string), refused, `destroy ${label}`)
  }
  t.same(await tree(parent), before, 'no path created, inside the directory or outside it')
  t.equal(await readFile(outside, 'utf8'), 'precious')
  await t.rejects(files.get('a'.repeat(41) + '..'), { message: /not characters outside base64url/ }, 'the message describes, never repeats, the key')
})

t.test('layout: directories 0700, files 0600, a header line then the data, no temporary file left', async (t) => {
  const dir = join(freshDir(), 'nested', 'sessions')
  const files = new FileStore({ dir, sweepInterval: false })
  const key = uniqueKey()
  const written = { ...record({ name: 'ada', nul: 'a\u0000b' }), user: 'digest-of-ada' }
  t.equal(await files.set(key, written, 0), true)
  t.equal(await mode(dir), 0o700, 'the directory, created with its missing parents')
  t.equal(await mode(join(dir, '..')), 0o700, 'a missing parent')
  t.equal(await mode(shardOf(dir, key)), 0o700, 'the shard')
  const file = join(shardOf(dir, key), `${key}.json`)
  t.equal(await mode(file), 0o600, 'the record')
  const { data, ...header } = written
  t.equal(await readFile(file, 'utf8'), JSON.stringify(header) + '\n' + JSON.stringify(data))
  t.ok(await files.touch(key, written.expiresAt + 5000))
  t.ok(await files.set(key, { ...written, version: 2 }, 1))
  await files.destroy(key)
  t.same(await tree(dir), [key.slice(0, 2)], 'no record, lock or temporary file left')
  t.same(await files.get(key), undefined)
})

t.test('fsync: true writes, touches and reads the same records', async (t) => {
  const files = store({ fsync: true })
  const key = uniqueKey()
  t.equal(await files.set(key, record({ a: 1 }), 0), true)
  t.equal(await files.touch(key, Date.now() + 90_000), true)
  t.same((await files.get(key))?.data, { a: 1 })
})

t.test('a file that is not a record: get rejects as unusable, touch misses it, a create replaces it', async (t) => {
  const dir = freshDir()
  const files = new FileStore({ dir, sweepInterval: false })
  const samples = ['', 'no header line', '{"version":1}\n{}', '{"version":1,"createdAt":1,"expiresAt":9e15,"user":7}\n{}', 'not json\n{}']
  for (const sample of samples) {
    const key = uniqueKey()
    await files.set(key, record({}), 0)
    await writeFile(join(shardOf(dir, key), `${key}.json`), sample)
    await t.rejects(files.get(key), { code: 'FST_SESS_UNUSABLE_RECORD' }, JSON.stringify(sample))
    t.equal(await files.touch(key, Date.now() + 1000), false)
    t.equal(await files.set(key, record({ fresh: true }, 5), 1), false, 'no version to match')
    t.equal(await files.set(key, record({ fresh: true }), 0), true)
    t.same((await files.get(key))?.data, { fresh: true })
  }
  const key = uniqueKey()
  await files.set(key, record({}), 0)
  await writeFile(join(shardOf(dir, key), `${key}.json`), '{"version":1,"createdAt":1,"expiresAt":9e15}\n{"data":')
  await t.rejects(files.get(key), { code: 'FST_SESS_UNUSABLE_RECORD', message: /its data is not JSON/ })
})

t.test('records around the size of one read, read at once, each come back whole and its own', async (t) => {
  const dir = freshDir()
  const files = new FileStore({ dir, sweepInterval: false })
  // Files from under 4 KiB to over it, byte by byte: one read, one read that fills its
  // buffer exactly, and a read of the rest.
  const written = Array.from({ length: 160 }, (_, i) => ({ key: uniqueKey(), data: { pad: String(i % 10).repeat(3940 + i) } }))
  await Promise.all(written.map(({ key, data }) => files.set(key, record(data), 0)))
  const sizes = await Promise.all(written.map(({ key }) => stat(join(shardOf(dir, key), `${key}.json`)).then((s) => s.size)))
  t.ok(sizes.includes(4095) && sizes.includes(4096) && sizes.includes(4097), 'sizes on both sides of 4 KiB')
  const read = await Promise.all(written.map(({ key }) => files.get(key)))
  t.same(read.map((r) => r?.data), written.map(({ data }) => data))
})

t.test('a directory removed under a running store comes back with the next write', async (t) => {
  const dir = freshDir()
  const files = new FileStore({ dir, sweepInterval: false })
  await files.set(uniqueKey(), record({}), 0)
  await rm(dir, { recursive: true })
  const key = uniqueKey()
  t.equal(await files.get(key), undefined)
  t.equal(await files.set(key, record({ back: true }), 0), true)
  t.same((await files.get(key))?.data, { back: true })
})

t.test('a lock left by a dead writer is taken over once older than lockStale; a live one makes writes fail, bounded', async (t) => {
  const dir = freshDir()
  const files = new FileStore({ dir, lockStale: 5, sweepInterval: false })
  const key = uniqueKey()
  await files.set(key, record({ v: 1 }), 0)
  const lock = join(shardOf(dir, key), `${key}.lock`)
  await writeFile(lock, '12345 deadbeef\n')
  await t.rejects(files.set(key, record({ v: 2 }, 2), 1), { code: 'FST_SESS_STORE_UNAVAILABLE', message: /locked by another writer/ })
  await t.rejects(files.destroy(key), { code: 'FST_SESS_STORE_UNAVAILABLE', message: /store delete found/ })
  t.same((await files.get(key))?.data, { v: 1 }, 'reads are never locked; the refused write changed nothing')
  t.equal(await readFile(lock, 'utf8'), '12345 deadbeef\n', 'a live lock is left alone')
  t.same(await tree(shardOf(dir, key)), [`${key}.json`, `${key}.lock`], 'the waits left nothing behind')
  await age(lock, 6000)
  t.equal(await files.set(key, record({ v: 2 }, 2), 1), true, 'taken over')
  t.same((await files.get(key))?.data, { v: 2 })
  t.same(await tree(shardOf(dir, key)), [`${key}.json`], 'the dead lock and its moved-aside copy are gone')
})

t.test('a write expecting an older version than the newest the store read or wrote is answered from the record, without the lock', async (t) => {
  const dir = freshDir()
  const files = new FileStore({ dir, sweepInterval: false })
  const other = new FileStore({ dir, sweepInterval: false })
  const key = uniqueKey()
  t.equal(await files.set(key, record({ v: 1 }), 0), true)
  t.equal(await files.set(key, record({ v: 2 }, 2), 1), true)
  const lock = join(shardOf(dir, key), `${key}.lock`)
  await writeFile(lock, 'a live writer\n')
  t.equal(await files.set(key, record({ outdated: true }, 2), 1), false, 'no wait for the held lock')
  t.equal(await readFile(lock, 'utf8'), 'a live writer\n', 'which stays as it was')
  await rm(lock)
  // Another process replaced the record with a new one at version 1: the version this store
  // remembers is wrong, and the write goes on under the lock.
  await other.destroy(key)
  t.equal(await other.set(key, record({ v: 1, again: true }), 0), true)
  t.equal(await files.set(key, record({ v: 2, again: true }, 2), 1), true)
  t.same((await files.get(key))?.data, { v: 2, again: true })
  // Written by the other process, then read here: a write expecting that version reads the
  // header once, under the lock, as sessions written by turns from several processes do.
  t.equal(await other.set(key, record({ v: 3 }, 3), 2), true)
  t.equal((await files.get(key))?.version, 3)
  const real = fs.open
  let reads = 0
  ;(fs as { open: unknown }).open = (...args: unknown[]) => { if (args[1] === 'r') reads++; return (real as (...a: unknown[]) => unknown)(...args) }
  t.teardown(() => { fs.open = real })
  t.equal(await files.set(key, record({ v: 4 }, 4), 3), true)
  t.equal(reads, 1, 'one header read')
})

t.test('file operations: a read is an open and a read, a write the README\'s five in a row, 12 trips in all', async (t) => {
  const files = store()
  const key = uniqueKey()
  t.equal(await files.set(key, record({ n: 1 }), 0), true)
  const calls: string[] = []
  for (const name of ['open', 'read', 'write', 'close', 'fstat', 'stat', 'rename', 'fsync', 'unlink'] as const) {
    const real = fs[name] as (...args: unknown[]) => unknown
    t.capture(fs, name, ((...args: unknown[]) => { calls.push(name); return real(...args) }) as never)
  }
  const loaded = await files.get(key)
  t.same(calls.filter((name) => name !== 'close'), ['open', 'read'], 'a read: open, read')
  t.equal(await files.set(key, record({ n: 2 }, 2), loaded!.version), true)
  // Closes are not waited for: let them run before counting.
  await new Promise((resolve) => setImmediate(resolve))
  t.same(calls.slice(3).filter((name) => name !== 'close').sort(), ['fstat', 'open', 'open', 'read', 'rename', 'stat', 'write'],
    'a write: create the lock (and its inode alongside), read the header (open, read), write the record (and check the lock alongside), rename')
  t.equal(calls.length, 12, 'a read and a write: 12 trips')
  t.equal(calls.filter((name) => name === 'close').length, 3, 'three of them closes nobody waits for')
})

t.test('locks: one holder at a time, released or published only by its holder, a moved live lock is put back', async (t) => {
  const dir = freshDir()
  await mkdir(dir)
  const path = join(dir, 'x.lock')
  let now = Date.now()
  const settings = { staleMs: 1000, now: () => now }
  const first = await acquireLock(path, settings, 0)
  t.ok(first)
  t.equal(await acquireLock(path, settings, 0), undefined, 'held: a second attempt fails at once')
  now += 2000
  const second = await acquireLock(path, settings, 0)
  t.ok(second, 'taken over once the first is stale')
  const target = join(dir, 'x.json')
  await writeLock(first!, 'from the first holder')
  await t.rejects(commitLock(first!, target), { message: /taken over/ }, 'a holder taken over cannot publish')
  await releaseLock(first!)
  t.equal((await stat(path)).ino, await second!.ino, 'nor remove the lock that replaced it')
  await writeLock(second!, 'from the second holder')
  await commitLock(second!, target)
  await releaseLock(second!)
  t.equal(await readFile(target, 'utf8'), 'from the second holder', 'the holder publishes by renaming its lock file')
  t.equal(existsSync(path), false, 'which gives the lock up')
  await rm(target)
  // Judged stale, then replaced by a newer holder before the move: the move takes the new
  // lock, which goes back.
  await writeFile(path, 'a dead holder\n')
  const newer = (): void => { writeFileSync(`${path}.new`, 'a newer holder\n'); renameSync(`${path}.new`, path) }
  const racing = { ...settings, now: () => { newer(); return now + 10_000 } }
  t.equal(await removeStaleLock(path, racing), true)
  t.equal(await readFile(path, 'utf8'), 'a newer holder\n', 'put back')
  await rm(path)
  t.equal(await removeStaleLock(path, settings), true, 'a missing lock is gone')
  await mkdir(join(dir, 'a-dir.lock'))
  await t.rejects(removeStaleLock(join(dir, 'a-dir.lock'), settings), { code: 'EISDIR' })
  await writeFile(join(dir, 'a-file'), '')
  await t.rejects(removeStaleLock(join(dir, 'a-file', 'z.lock'), settings), { code: 'ENOTDIR' })
  await rm(join(dir, 'a-file'))
  await t.rejects(acquireLock(join(dir, 'missing', 'y.lock'), settings, 0), { code: 'ENOENT' })
  t.same((await readdir(dir)).sort(), ['a-dir.lock'], 'nothing left behind')
})

t.test('sweep() deletes expired and unreadable records and old leftovers, nothing live or fresh', async (t) => {
  const dir = freshDir()
  const files = new FileStore({ dir, lockStale: 5, sweepInterval: false })
  const [live, expired, corrupt, busy] = [uniqueKey(), uniqueKey(), uniqueKey(), uniqueKey()]
  await files.set(live, record({}), 0)
  await files.set(expired, record({}, 1, 50), 0)
  await files.set(busy, record({}, 1, 50), 0)
  await files.set(corrupt, record({}), 0)
  await writeFile(join(shardOf(dir, corrupt), `${corrupt}.json`), 'garbage')
  const busyLock = join(shardOf(dir, busy), `${busy}.lock`)
  await writeFile(busyLock, 'a live writer\n')
  const leftovers = {
    oldStale: join(shardOf(dir, live), `${live}.lock.abc.stale`),
    freshStale: join(shardOf(dir, live), `${live}.lock.def.stale`),
    deadLock: join(shardOf(dir, live), `${live}.lock`)
  }
  for (const path of Object.values(leftovers)) await writeFile(path, 'x')
  await age(leftovers.oldStale, 6000)
  await age(leftovers.deadLock, 6000)
  await writeFile(join(dir, 'foreign.txt'), 'not ours')
  await mkdir(join(dir, 'zz', 'nested'), { recursive: true })
  const later = Date.now() + 1000
  t.capture(Date, 'now', () => later)
  t.equal(await files.sweep(), 2, 'the expired record and the unreadable one')
  t.equal(await files.get(live) !== undefined, true)
  t.same(await tree(shardOf(dir, live)).then((names) => names.filter((n) => n.startsWith(live))), [`${live}.json`, `${live}.lock.def.stale`])
  t.ok(await stat(join(shardOf(dir, busy), `${busy}.json`)), 'a record whose lock is held is left for the next sweep')
  t.ok(await stat(join(dir, 'foreign.txt')), 'files the store did not write are left')
  await rm(busyLock)
  t.equal(await files.sweep(), 1, 'swept once its writer is done')
})

t.test('one sweeper at a time: while another process holds the sweep lock, sweep() deletes nothing', async (t) => {
  const dir = freshDir()
  const files = new FileStore({ dir, sweepInterval: false })
  await files.set(uniqueKey(), record({}, 1, 1), 0)
  await writeFile(join(dir, '.sweep.lock'), 'another sweeper\n')
  const later = Date.now() + 1000
  t.capture(Date, 'now', () => later)
  t.equal(await files.sweep(), 0)
  await rm(join(dir, '.sweep.lock'))
  t.equal(await files.sweep(), 1)
  t.same(await tree(dir).then((all) => all.filter((p) => p.endsWith('.lock'))), [], 'the sweep lock is released')
})

t.test('the sweep timer runs at a randomized interval, unref\'d, until close()', async (t) => {
  const { started, cleared } = heldTimers(t)
  const random = [0, 0.999]
  t.capture(Math, 'random', () => random.shift() ?? 0.5)
  const dir = freshDir()
  const files = new FileStore({ dir, sweepInterval: 1000 })
  t.same(started.map((s) => [s.ms, s.unref]), [[500_000, true]], 'half the interval at the least')
  const key = uniqueKey()
  await files.set(key, record({}, 1, 1), 0)
  const later = Date.now() + 1000
  t.capture(Date, 'now', () => later)
  await started[0].run()
  t.same(await tree(shardOf(dir, key)), [], 'the pass deleted the expired record')
  t.equal(started.length, 2, 'and scheduled the next')
  t.ok(started[1].ms > 1_498_000 && started[1].ms < 1_500_000, 'one and a half times at the most')
  await files.close()
  t.ok(cleared.includes(started[1].timer), 'close() clears the timer')
  await started[1].run()
  t.equal(started.length, 2, 'a pass after close() schedules nothing more')
})

t.test('the longest sweep interval accepted waits at most what setTimeout can hold', async (t) => {
  // A longer delay would make setTimeout fire after 1 ms: a sweep after every sweep.
  const { started } = heldTimers(t)
  t.capture(Math, 'random', () => 0.999)
  const files = new FileStore({ dir: freshDir(), sweepInterval: 2_147_483 })
  t.equal(started[0].ms, 2 ** 31 - 1)
  await files.close()
})

t.test('sweepInterval: false starts no timer; a failed pass goes to onError or a warning, never throws', async (t) => {
  const { started } = heldTimers(t)
  await (new FileStore({ dir: freshDir(), sweepInterval: false })).close()
  t.same(started, [])
  const blocked = join(parent, `file-${sequence++}`)
  await writeFile(blocked, 'a file where the directory should be')
  const errors: Error[] = []
  const files = new FileStore({ dir: blocked, onError: (err) => errors.push(err) })
  await started[0].run()
  t.match(errors, [{ code: 'EEXIST' }])
  t.equal(started.length, 2, 'the next pass is scheduled all the same')
  await files.close()
  const warnings: unknown[][] = []
  t.capture(process, 'emitWarning', (...args: unknown[]) => { warnings.push(args) })
  const quiet = new FileStore({ dir: blocked })
  await started[2].run()
  t.match(warnings, [[/FileStore could not sweep expired sessions: EEXIST/, 'FastifySessionsWarning']])
  await quiet.close()
})

import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { storeKey } from '../../src/crypto/ids'
import { FileStore } from '../../src/index'
import { build, SECRET } from '../helpers/app'
import { burst, cookieOf, dump, login, post, together } from '../helpers/store-plugin'
import { storeRoutes } from '../helpers/routes'
import { logLines, sessionWarnings } from '../helpers/log-lines'
import { revocationScenarios } from '../helpers/logout-everywhere'

// FileStore through the plugin: what requests do to the files, races within one process and
// across two sharing the directory, writers killed mid-write, what the files hold.

const parent = mkdtempSync(join(tmpdir(), 'fastify-sessions-file-plugin-'))
t.teardown(() => rmSync(parent, { recursive: true, force: true }))
let sequence = 0
const freshDir = (): string => join(parent, `d${sequence++}`)
const newStore = (dir = freshDir(), lockStale = 10): FileStore => new FileStore({ dir, lockStale, sweepInterval: false })

/** The value the /blob route stores in round `n`: n repeated to 200 KB, so a mix shows. */
const blobFor = (round: number): string => `${round}.`.repeat(200_000 / (String(round).length + 1))

function routes (app: FastifyInstance): void {
  storeRoutes(app, burst)
  app.post('/blob', async (req) => {
    const round = ((req.session.get('round') as number | undefined) ?? 0) + 1
    req.session.set('round', round)
    req.session.set('blob', blobFor(round))
    return 'ok'
  })
}

/** Every file under `dir` with what identifies its content: inode, size, mtime. */
async function snapshot (dir: string): Promise<string[]> {
  const names = (await readdir(dir, { recursive: true })).sort()
  return await Promise.all(names.map(async (name) => {
    const s = await stat(join(dir, name))
    return `${name} ${s.ino} ${s.size} ${s.mtimeMs}`
  }))
}

const recordFiles = async (dir: string): Promise<string[]> => (await readdir(dir, { recursive: true })).filter((name) => name.endsWith('.json'))

/** A child process running test/helpers/file-child.mjs, and what it printed so far. */
function child (env: Record<string, string>): { process: ChildProcess, printed: (done: (text: string) => boolean) => Promise<string> } {
  const proc = spawn(process.execPath, [resolve(__dirname, '../helpers/file-child.mjs')], {
    env: { ...process.env, SECRET, ...env }, stdio: ['pipe', 'pipe', 'inherit']
  })
  let output = ''
  const waiters = new Set<() => void>()
  proc.stdout?.on('data', (chunk: Buffer) => { output += chunk.toString(); for (const wake of waiters) wake() })
  const printed = (done: (text: string) => boolean): Promise<string> => new Promise((resolve, reject) => {
    const check = (): void => { if (done(output)) { waiters.delete(check); resolve(output) } }
    waiters.add(check)
    proc.once('close', () => { if (waiters.delete(check)) reject(new Error(`the child exited; it printed: ${output}`)) })
    check()
  })
  return { process: proc, printed }
}

t.test('a request that only reads its session rewrites no file; a write replaces one', async (t) => {
  const dir = freshDir()
  const app = await build({ store: newStore(dir) }, routes)
  t.teardown(() => app.close())
  const cookie = await login(app)
  const before = await snapshot(dir)
  for (let i = 0; i < 5; i++) t.same((await app.inject({ url: '/me', headers: { cookie } })).json(), { user: 'ada' })
  t.same(await snapshot(dir), before, 'no file written, replaced or added')
  await post(app, '/login?user=bob', cookie)
  t.not(await snapshot(dir), before)
  t.equal((await recordFiles(dir)).length, 1)
})

t.test('100 concurrent new sessions and 100 concurrent writes of distinct keys all land', async (t) => {
  const dir = freshDir()
  const app = await build({ store: newStore(dir) }, routes)
  t.teardown(() => app.close())
  const logins = await Promise.all(Array.from({ length: 100 }, (_, i) => app.inject({ method: 'POST', url: '/login', query: { user: `u${i}` } })))
  t.same(logins.filter((r) => r.statusCode !== 200), [])
  t.equal((await recordFiles(dir)).length, 100)
  const cookie = cookieOf(logins[0])
  const sets = await together(100, (i) => post(app, `/set/k${i}`, cookie))
  t.same(sets.map((r) => r.statusCode).filter((s) => s !== 200), [])
  t.equal(Object.keys(await dump(app, cookie)).filter((k) => k.startsWith('k')).length, 100)
})

t.test('100 concurrent update() increments: exactly 100', async (t) => {
  const app = await build({ store: newStore() }, routes)
  t.teardown(() => app.close())
  const cookie = await login(app)
  const results = await together(100, () => post(app, '/increment', cookie))
  t.same(results.map((r) => r.statusCode).filter((s) => s !== 200), [])
  t.equal((await dump(app, cookie)).counter, 100)
})

t.test('two processes sharing the directory: no increment lost or doubled, every new session stored', async (t) => {
  const dir = freshDir()
  const one = await build({ store: newStore(dir) }, routes)
  t.teardown(() => one.close())
  const cookie = await login(one)
  const other = child({ MODE: 'increments', DIR: dir, COOKIE: cookie, COUNT: '50' })
  await other.printed((text) => text.includes('ready\n'))
  other.process.stdin?.end('go\n')
  const results = [
    ...await together(50, () => post(one, '/increment', cookie)),
    ...await Promise.all(Array.from({ length: 50 }, () => one.inject({ method: 'POST', url: '/login' })))
  ]
  const childStatuses = JSON.parse((await other.printed((text) => text.split('\n').length > 2)).split('\n')[1]) as number[]
  // Two writers on one session at once can exhaust the plugin's bounded compare-and-set
  // retries: such a request answers 409 and changes nothing. No increment may be lost or
  // applied twice.
  const increments = [...results.slice(0, 50).map((r) => r.statusCode), ...childStatuses.slice(0, 50)]
  t.same(increments.filter((s) => s !== 200 && s !== 409), [], 'every increment 200 or a 409 conflict')
  t.same([...results.slice(50).map((r) => r.statusCode), ...childStatuses.slice(50)].filter((s) => s !== 200), [], 'both processes created their 50 sessions')
  const applied = increments.filter((s) => s === 200).length
  t.comment(`increments answered 200: ${applied} of 100`)
  t.ok(applied >= 90, 'nearly all increments succeed')
  t.equal((await dump(one, cookie)).counter, applied, 'every increment answered 200 is counted once, and no other')
  t.equal((await recordFiles(dir)).length, 101, 'the session and 100 new ones, 50 from each process')
})

t.test('a writer of 200 KB sessions killed a dozen times mid-write leaves no torn record; writes resume', async (t) => {
  const dir = freshDir()
  const lockStale = 0.3
  const store = newStore(dir, lockStale)
  const { lines, logger } = logLines('warn')
  const app = await build({ store }, routes, { logger })
  t.teardown(() => app.close())
  const cookie = await login(app)
  t.equal((await post(app, '/blob', cookie)).statusCode, 200)
  let round = 1
  const steps = ['locked', 'half-written', 'before-rename', 'after-rename']
  for (let kill = 0; kill < 12; kill++) {
    const step = steps[kill % 4]
    const writes = 1 + (kill % 3)
    const writer = child({ MODE: 'writer', DIR: dir, COOKIE: cookie, LOCK_STALE: String(lockStale), WRITES: String(writes), STEP: step })
    const printed = await writer.printed((text) => text.includes(`inside ${step}\n`))
    writer.process.kill('SIGKILL')
    await once(writer.process, 'close')
    t.same(printed.split('\n').filter((line) => /^\d+$/.test(line)), Array(writes - 1).fill('200'), `kill ${kill}: the writes before succeeded`)
    const locked = (await readdir(dir, { recursive: true })).some((name) => name.endsWith('.lock'))
    // The rename that publishes the record gives the lock up.
    t.equal(locked, step !== 'after-rename', `kill ${kill}: killed ${step === 'after-rename' ? 'after giving the lock up' : 'holding the lock'} (${step})`)
    // The killed write is stored whole once its rename happened, and not at all before.
    round += writes - (step === 'after-rename' ? 0 : 1)
    const data = await dump(app, cookie)
    t.equal(data.round, round, `kill ${kill}: the record of the last complete write`)
    t.ok(data.blob === blobFor(round), `kill ${kill}: that write's value whole`)
    const resumed = await post(app, '/blob', cookie)
    t.equal(resumed.statusCode, 200, `kill ${kill}: the next write takes the lock over and succeeds`)
    round++
  }
  t.same(sessionWarnings(lines), [], 'no record was unusable')
  t.equal((await dump(app, cookie)).round, round)
  // A killed writer's half-written record is its lock file: the next writer removed it.
  t.same((await readdir(dir, { recursive: true })).filter((name) => !name.endsWith('.json') && name.length > 4), [], 'no lock or partial record left')
})

t.test('file names and contents hold digests, never a session id; with encryptAtRest, no plaintext', async (t) => {
  for (const encryptAtRest of [false, true]) {
    const dir = freshDir()
    const app = await build({ store: newStore(dir), encryptAtRest }, routes)
    t.teardown(() => app.close())
    const cookie = await login(app, 'plain-user-name')
    const [id, signature] = cookie.slice('sid='.length).split('.')
    const names = await recordFiles(dir)
    t.same(names, [join(storeKey(id).slice(0, 2), `${storeKey(id)}.json`)])
    const content = await readFile(join(dir, names[0]), 'utf8')
    const everything = names.join('\n') + content
    t.notOk(everything.includes(id) || everything.includes(signature), 'no id, no signature')
    t.equal(content.includes('plain-user-name'), !encryptAtRest, encryptAtRest ? 'no plaintext' : 'the data as JSON')
    t.same((await app.inject({ url: '/me', headers: { cookie } })).json(), { user: 'plain-user-name' })
  }
})

t.test('a corrupt file gives a fresh session and a warn line, and is deleted', async (t) => {
  const dir = freshDir()
  const { lines, logger } = logLines('warn')
  const app = await build({ store: newStore(dir) }, routes, { logger })
  t.teardown(() => app.close())
  const cookie = await login(app)
  const [name] = await recordFiles(dir)
  await writeFile(join(dir, name), '{"version":1,"createdAt":1,"expiresAt":9e15}\n{"user":')
  const res = await app.inject({ url: '/me', headers: { cookie } })
  t.same([res.statusCode, res.json()], [200, { user: null }])
  t.equal(sessionWarnings(lines).length, 1)
  t.same(await recordFiles(dir), [], 'the file is deleted')
})

revocationScenarios(t, {
  name: 'FileStore',
  counts: false,
  options: () => ({ store: newStore(), userKey: 'userId' })
})

t.test('a write held up by another process\'s lock answers 503 within storeTimeout; the next one goes through', async (t) => {
  const dir = freshDir()
  const app = await build({ store: newStore(dir), storeTimeout: 0.2 }, routes)
  t.teardown(() => app.close())
  const cookie = await login(app)
  const key = storeKey(cookie.slice('sid='.length).split('.')[0])
  const lock = join(dir, key.slice(0, 2), `${key}.lock`)
  await writeFile(lock, '') // a live writer in another process
  const held = await app.inject({ method: 'POST', url: '/login', query: { user: 'bob' }, headers: { cookie } })
  t.equal(held.statusCode, 503)
  t.match(held.json(), { code: 'FST_SESS_STORE_UNAVAILABLE', message: /timed out after 0\.2 s/ }, 'bounded by storeTimeout, not by the store')
  t.same((await dump(app, cookie)).user, 'ada', 'reads are never held up, and nothing was written')
  await rm(lock)
  t.equal((await app.inject({ method: 'POST', url: '/login', query: { user: 'bob' }, headers: { cookie } })).statusCode, 200)
  t.same((await dump(app, cookie)).user, 'bob')
})

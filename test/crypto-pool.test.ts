import t from 'tap'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { KeyRing } from '../src/crypto/key-ring'
import { CryptoPool, workerFilename } from '../src/crypto/pool'
import { seal, unseal } from '../src/crypto/seal'
import { AUTO_MIN_BYTES, Sealer, type OffloadMode } from '../src/crypto/sealer'

const SECRET = 'pool-secret-pool-secret-pool-secret-42'
const ring = new KeyRing(SECRET)
const record = JSON.stringify({ id: 'abc', data: { user: 'ada', note: 'ünïcødé 🎉' } })
const big = JSON.stringify({ blob: 'b'.repeat(200_000) })

function sealer (t: tap.Test, offload: OffloadMode, extra: Partial<ConstructorParameters<typeof Sealer>[0]> = {}): Sealer {
  const created = new Sealer({ secret: SECRET, offload, ...extra })
  t.teardown(() => created.destroy())
  return created
}

// Each pool's first job starts its threads, and under the TypeScript loader each thread
// takes most of a second to load: the tests share one pool and one 'always' sealer wherever
// a fresh one proves nothing.
const shared = new CryptoPool(ring, { threads: 2 })
const always = new Sealer({ secret: SECRET, offload: 'always' })
t.teardown(() => Promise.all([shared.destroy(), always.destroy()]))

t.test('the pool starts no thread before its first job', async (t) => {
  const p = shared
  t.equal(p.started, false)
  t.equal(p.threadCount, 0)
  t.equal(p.threads, 2)
  const sealed = await p.seal('sid', record)
  t.equal(p.started, true)
  t.equal(p.threadCount, 2)
  const opened = await p.unseal('sid', sealed)
  t.equal(opened.ok && Buffer.isBuffer(opened.plaintext) && opened.plaintext.toString(), record)
  t.equal(p.pending, 0)
})

t.test('under the TypeScript loader the worker runs worker.ts; compiled code finds worker.js', async (t) => {
  t.match(workerFilename(), /worker\.ts$/)
  const dir = t.testdir({ 'worker.js': '' })
  t.equal(workerFilename(dir), join(dir, 'worker.js'))
})

t.test('garbage does not kill the pool', async (t) => {
  const p = shared
  const garbage = ['', 'A'.repeat(8192), '😀'.repeat(100), Buffer.alloc(60).toString('base64url'), 42, null, {}, () => 1]
  for (const value of garbage) {
    const result = await p.unseal('sid', value as string)
    t.equal(result.ok, false, String(value).slice(0, 20))
  }
  await t.rejects(p.seal('sid', { not: 'text' } as unknown as string), TypeError)
  await t.rejects(p.unseal(3 as unknown as string, 'x'), TypeError)
  const many = await p.unsealMany('sid', garbage as string[])
  t.same(many.map((r) => r.ok), garbage.map(() => false))
  t.equal(p.threadCount, p.threads, 'every thread is still up')
  const opened = await p.unseal('sid', await p.seal('sid', record))
  t.ok(opened.ok, 'and still works')
})

t.test('batches', async (t) => {
  const p = shared
  const values = ['a', record, Buffer.from('buffer')]
  const sealed = await p.sealMany('sid', values)
  const opened = await p.unsealMany('sid', sealed)
  t.same(opened.map((r) => r.ok && r.plaintext.toString()), ['a', record, 'buffer'])
  await t.rejects(p.sealMany('sid', ['ok', 5 as unknown as string]), TypeError)
})

t.test('destroy() ends every thread; later jobs reject', async (t) => {
  const p = new CryptoPool(ring)
  await p.seal('sid', 'x')
  await p.destroy()
  t.equal(p.threadCount, 0)
  t.equal(p.started, false)
  await t.rejects(p.seal('sid', 'x'), /after destroy/)
  await p.destroy()
  const neverStarted = new CryptoPool(ring)
  await neverStarted.destroy()
  t.throws(() => new CryptoPool(ring, { threads: 0 }), TypeError)
  t.throws(() => new CryptoPool(ring, { threads: 1.5 }), TypeError)
})

t.test('every mode opens what every other mode sealed', async (t) => {
  const modes: Record<string, Sealer> = {
    never: sealer(t, 'never'),
    always,
    auto: sealer(t, 'auto'),
    autoOffloading: sealer(t, 'auto', { autoMinBytes: 0 })
  }
  const direct = shared
  const sealers = [
    ...Object.entries(modes).map(([name, s]) => [name, (p: string) => s.seal('sid', p)] as const),
    ['pool', (p: string) => direct.seal('sid', p)] as const,
    ['pure', async (p: string) => seal(ring, 'sid', p)] as const
  ]
  const openers = [
    ...Object.entries(modes).map(([name, s]) => [name, (v: string) => s.unseal('sid', v)] as const),
    ['pool', (v: string) => direct.unseal('sid', v)] as const,
    ['pure', async (v: string) => unseal(ring, 'sid', v)] as const
  ]
  for (const payload of [record, big]) {
    for (const [sealedBy, sealWith] of sealers) {
      const sealed = await sealWith(payload)
      for (const [openedBy, openWith] of openers) {
        const opened = await openWith(sealed)
        t.equal(opened.ok && opened.plaintext.toString(), payload, `${sealedBy} -> ${openedBy}, ${payload.length} chars`)
      }
    }
  }
  t.equal(modes.autoOffloading.pool?.started, true)
})

t.test("'auto' keeps small jobs inline and offloads large ones only to an idle thread", async (t) => {
  const s = sealer(t, 'auto', { autoMinBytes: 1000 })
  t.equal(s.offload, 'auto')
  t.ok(AUTO_MIN_BYTES > 1024 * 1024, 'default threshold lies above every size the pool lost at')
  await s.unseal('sid', await s.seal('sid', record))
  t.equal(s.pool?.started, false, 'small jobs never start the pool')
  const jobs = Array.from({ length: 5 }, () => s.seal('sid', big))
  t.equal(s.pool?.pending, 1, 'one job went to the idle thread, the rest ran inline')
  const sealed = await Promise.all(jobs)
  const opened = await Promise.all(sealed.map((v) => s.unseal('sid', v)))
  t.ok(opened.every((r) => r.ok))
  t.equal(s.pool?.started, true)
})

t.test("'never' has no pool; 'always' sends everything to it", async (t) => {
  const never = sealer(t, 'never')
  t.equal(never.pool, undefined)
  t.equal(never.offload, 'never')
  await always.seal('sid', 'x')
  t.equal(always.pool?.started, true)
  t.equal((await always.unseal('sid', 'garbage')).ok, false)
  t.throws(() => new Sealer({ secret: SECRET, offload: 'sometimes' as OffloadMode }), TypeError)
  await t.rejects(always.seal('sid', 1 as unknown as string), TypeError)
  await t.rejects(always.unseal(1 as unknown as string, 'x'), TypeError)
  t.equal(new Sealer({ secret: ring }).ring, ring, 'takes a ready ring')
})

t.test('a failing pool falls back to inline and says so', async (t) => {
  const errors: unknown[] = []
  const s = sealer(t, 'always', { onPoolError: (error) => errors.push(error) })
  await s.pool?.destroy()
  const sealed = await s.seal('sid', record)
  const opened = await s.unseal('sid', sealed)
  t.equal(opened.ok && opened.plaintext.toString(), record)
  t.equal(errors.length, 2)
  t.match(String(errors[0]), /after destroy/)
  const quiet = sealer(t, 'always')
  await quiet.pool?.destroy()
  t.ok((await quiet.unseal('sid', await quiet.seal('sid', 'x'))).ok, 'no callback needed')
})

t.test('after destroy() a sealer works inline', async (t) => {
  const s = new Sealer({ secret: SECRET, offload: 'always' })
  await s.seal('sid', 'x')
  await s.destroy()
  t.equal(s.pool, undefined)
  t.ok((await s.unseal('sid', await s.seal('sid', 'x'))).ok)
})

// Compiles src/crypto the way `npm run build` does (CommonJS, worker.js next to
// pool.js) into a fixture directory, so this does not depend on a fresh dist/.
// The package as built by `npm test` (its pretest step): what users run, worker file included.
const BUILT = join(__dirname, '..', 'dist', 'crypto')

const CHILD = `
const { Sealer } = require(${JSON.stringify(join(BUILT, 'sealer.js'))})
const s = new Sealer({ secret: ${JSON.stringify(SECRET)}, offload: 'always', threads: 2 })
;(async () => {
  const opened = await s.unseal('sid', await s.seal('sid', 'hello'))
  const threads = s.pool.threadCount
  if (process.env.DESTROY === '1') await s.destroy()
  console.log(JSON.stringify({ ok: opened.ok, threads, worker: require(${JSON.stringify(join(BUILT, 'pool.js'))}).workerFilename() }))
})()
`

function runChild (dir: string, destroy: boolean): Promise<{ code: number | null, out: string, ms: number }> {
  const started = Date.now()
  // A clean execArgv: the child must not get tap's TypeScript loader.
  const child = spawn(process.execPath, ['child.js'], { cwd: dir, env: { ...process.env, NODE_OPTIONS: '', DESTROY: destroy ? '1' : '0' } })
  let out = ''
  child.stdout.on('data', (chunk) => { out += chunk })
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
  return new Promise((resolve) => child.on('exit', (code) => {
    clearTimeout(timer)
    resolve({ code, out, ms: Date.now() - started })
  }))
}

t.test('built code: the pool runs worker.js, and after destroy() the process exits on its own', async (t) => {
  const dir = t.testdir({ 'child.js': CHILD })
  const { code, out } = await runChild(dir, true)
  t.equal(code, 0, 'exited by itself, not killed')
  t.same(JSON.parse(out), { ok: true, threads: 2, worker: join(BUILT, 'worker.js') })
})

t.test('sealInline() and unsealInline() answer now when the job runs inline, else leave it to the pool', async (t) => {
  const inline = new Sealer({ secret: SECRET, offload: 'never' })
  const sealed = inline.sealInline('sid', Buffer.from('hello')) as string
  t.type(sealed, 'string')
  const opened = inline.unsealInline('sid', sealed)
  t.equal(opened?.ok && opened.plaintext.toString(), 'hello')
  t.same(inline.unsealInline('sid', 42 as unknown as string), { ok: false, reason: 'malformed' }, 'garbage gives a reason, not a throw')
  t.throws(() => inline.sealInline(1 as unknown as string, 'x'), TypeError)
  const pooled = sealer(t, 'always')
  t.equal(pooled.sealInline('sid', 'x'), undefined, "'always' leaves every job to the pool")
  t.equal(pooled.unsealInline('sid', sealed), undefined)
  t.equal(pooled.pool?.started, false, 'and starts nothing doing so')
})

// A second application process on the same FileStore directory, for the multi-process
// tests of FileStore. It runs the built package and prints "ready". Then, by MODE:
// - "increments": waits for "go" on stdin, sends COUNT update() increments at once to the
//   session in COOKIE, creates COUNT new sessions at once, and prints the status codes as one
//   JSON line;
// - "writer": rewrites the session in COOKIE with a 200 KB value, one request after another,
//   printing each status code, and stops inside write number WRITES at STEP (below),
//   printing "inside STEP", until it is killed.
import { createRequire } from 'node:module'
import Fastify from 'fastify'
import fastifySessions, { FileStore } from '../../dist/index.mjs'

const { MODE, DIR, COOKIE, COUNT, SECRET, LOCK_STALE, WRITES, STEP } = process.env
const files = new FileStore({ dir: DIR, lockStale: Number(LOCK_STALE ?? 10), sweepInterval: false })
let writes = 0
let armed = false
// The writer stops inside its write number WRITES, at STEP, and waits there to be killed:
// the store's calls of node:fs are looked up at each call, so wrapping them here puts the
// stop between two of its file operations.
const stops = new Set(['locked', 'half-written', 'before-rename', 'after-rename'])
if (MODE === 'writer' && !stops.has(STEP)) throw new Error(`STEP must be one of ${[...stops].join(', ')}`)
function stop (step) {
  if (!armed || step !== STEP) return
  process.stdout.write(`inside ${step}\n`)
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0)
}
const fs = createRequire(import.meta.url)('node:fs')
const real = { open: fs.open, write: fs.write, rename: fs.rename }
// Lock files open, whose first write (the new record) is cut in two.
const lockFiles = new Set()
fs.open = (...args) => {
  const callback = args.pop()
  const [path, flags] = args
  real.open(...args, (err, fd) => {
    // The lock is taken once its file exists; the new record is then written into it.
    if (err === null && flags === 'wx' && String(path).endsWith('.lock')) {
      lockFiles.add(fd)
      stop('locked')
    }
    callback(err, fd)
  })
}
fs.write = (fd, ...args) => {
  if (!lockFiles.delete(fd)) return real.write(fd, ...args)
  const [buffer, offset, length, position, callback] = args
  // Half of it, reported as a short write: the store writes the rest with the next call.
  real.write(fd, buffer, offset, Math.floor(length / 2), position, (err, written) => {
    if (err === null) stop('half-written')
    callback(err, written)
  })
}
fs.rename = (from, to, callback) => {
  if (to.endsWith('.json')) stop('before-rename')
  real.rename(from, to, (err) => {
    if (err === null && to.endsWith('.json')) stop('after-rename')
    callback(err)
  })
}
const store = {
  get: (key) => files.get(key),
  set: (key, record, expected) => { armed = ++writes === Number(WRITES); return files.set(key, record, expected) },
  destroy: (key) => files.destroy(key),
  touch: (key, expiresAt) => files.touch(key, expiresAt)
}
const app = Fastify()
await app.register(fastifySessions, { secret: SECRET, store })
app.post('/increment', async (req) => {
  await req.session.update((s) => { s.set('counter', (s.get('counter') ?? 0) + 1) })
  return 'ok'
})
app.post('/login', async (req) => { req.session.set('user', 'child'); return 'ok' })
// The same route as the test's: the value of round n is n repeated to 200 KB, so a record
// mixing two writes shows.
app.post('/blob', async (req) => {
  const round = (req.session.get('round') ?? 0) + 1
  req.session.set('round', round)
  req.session.set('blob', `${round}.`.repeat(200_000 / (String(round).length + 1)))
  return 'ok'
})
await app.ready()
const post = (url) => app.inject({ method: 'POST', url, headers: { cookie: COOKIE } })

process.stdout.write('ready\n')
if (MODE === 'writer') {
  for (;;) {
    const res = await post('/blob')
    process.stdout.write(`${res.statusCode}\n`)
  }
} else {
  process.stdin.once('data', async () => {
    const count = Number(COUNT)
    const results = [
      ...await Promise.all(Array.from({ length: count }, () => post('/increment'))),
      ...await Promise.all(Array.from({ length: count }, () => app.inject({ method: 'POST', url: '/login' })))
    ]
    process.stdout.write(JSON.stringify(results.map((r) => r.statusCode)) + '\n')
    await app.close()
  })
}

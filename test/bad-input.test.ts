import t from 'tap'
import { randomBytes } from 'node:crypto'
import { Writable } from 'node:stream'
import { build, sessionCookie } from './helpers/app'
import { StoreSpy } from './helpers/store-spy'

// Deterministic generator, so a failing case can be reproduced from the seed.
function prng (seed: number): () => number {
  return () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    return seed / 0x7fffffff
  }
}

function mutations (valid: string): string[] {
  const rand = prng(42)
  const pick = (s: string) => Math.floor(rand() * s.length)
  const alphabet = 'ABCxyz019_-.=%+/é😀 \u0000'
  const out: string[] = ['', '.', valid.slice(0, 43), valid.slice(44), valid + 'x', 'x' + valid, valid.replace('.', ''),
    valid.replace('.', '..'), valid.toUpperCase(), 'A'.repeat(8192), valid.replace(/-/g, '+').replace(/_/g, '/'),
    Buffer.from(valid).toString('base64'), encodeURIComponent('ünïcödé.' + valid), '%E0%A4%A', valid.slice(0, -1) + '😀']
  for (let i = 0; i < valid.length; i++) {
    const c = valid[i] === 'A' ? 'B' : 'A'
    out.push(valid.slice(0, i) + c + valid.slice(i + 1))
  }
  for (let i = 1; i < valid.length; i += 3) out.push(valid.slice(0, i))
  for (let i = 0; i < 150; i++) {
    const at = pick(valid)
    const ch = alphabet[Math.floor(rand() * alphabet.length)]
    out.push(valid.slice(0, at) + ch + valid.slice(at + 1))
  }
  for (let i = 0; i < 60; i++) out.push(randomBytes(1 + Math.floor(rand() * 120)).toString('base64url'))
  for (let i = 0; i < 20; i++) out.push(randomBytes(32).toString('base64url') + '.' + randomBytes(32).toString('base64url'))
  return [...new Set(out)].filter((c) => c !== valid)
}

t.test('forged, truncated, oversized and random cookies get a fresh session, never a 5xx', async (t) => {
  const lines: Array<{ level: number, sessionRejected?: string, msg: string }> = []
  const stream = new Writable({ write (chunk, _enc, done) { lines.push(JSON.parse(String(chunk))); done() } })
  const store = new StoreSpy()
  t.teardown(() => store.close())
  const app = await build({ store }, (app) => {
    app.get('/w', async (req) => { req.session.set('secret', 'data'); return 'ok' })
    app.get('/r', async (req) => ({ secret: req.session.get('secret') ?? null, isNew: req.session.isNew }))
  }, { logger: { level: 'debug', stream } })
  t.teardown(() => app.close())
  const valid = (sessionCookie(await app.inject('/w')) as string).slice(4)
  const cases = mutations(valid)
  t.ok(cases.length > 300, `${cases.length} cases`)
  store.reset()
  const seen = new Set<string>()
  for (const value of cases) {
    const res = await app.inject({ url: '/r', headers: { cookie: `sid=${value}` } })
    if (res.statusCode !== 200 || res.json().secret !== null || res.json().isNew !== true) {
      t.fail(`cookie ${JSON.stringify(value.slice(0, 100))} gave ${res.statusCode} ${res.body}`)
      continue
    }
    seen.add(value)
  }
  t.equal(seen.size, cases.length, 'every case answered 200 with a fresh session')
  t.equal(store.calls.get, 0, 'no forged id ever reached the store')
  const rejected = lines.filter((l) => l.sessionRejected !== undefined)
  t.ok(rejected.length >= cases.length - 20, 'a debug line for (almost) every rejected cookie')
  t.same([...new Set(rejected.map((l) => l.sessionRejected))].sort(), ['bad signature', 'malformed cookie'])
  t.notOk(lines.some((l) => JSON.stringify(l).includes(valid.slice(0, 43))), 'the raw id is never logged')
  t.equal((await app.inject({ url: '/r', headers: { cookie: `sid=${valid}` } })).json().secret, 'data', 'the real cookie still works')
})

t.test('a well-signed cookie for an unknown session gives a fresh session and a debug line', async (t) => {
  const lines: Array<{ sessionRejected?: string }> = []
  const stream = new Writable({ write (chunk, _enc, done) { lines.push(JSON.parse(String(chunk))); done() } })
  const first = await build({}, (app) => { app.get('/w', async (req) => { req.session.set('a', 1); return 'ok' }) })
  const cookie = sessionCookie(await first.inject('/w'))
  await first.close()
  const second = await build({}, (app) => { app.get('/r', async (req) => req.session.get('a') ?? 'none') }, { logger: { level: 'debug', stream } })
  t.teardown(() => second.close())
  const res = await second.inject({ url: '/r', headers: { cookie } })
  t.equal(res.statusCode, 200)
  t.equal(res.body, 'none')
  t.ok(lines.some((l) => l.sessionRejected === 'unknown or expired session'))
})

t.test('duplicate and oddly formed cookie headers never fail the request', async (t) => {
  const app = await build({}, (app) => { app.get('/r', async (req) => req.session.get('a') ?? 'none') })
  t.teardown(() => app.close())
  for (const cookie of ['sid', 'sid=', '=; sid=;', 'sid=a; sid=b', 'sid="quoted"', 'a=b;;;sid=%%%', ';'.repeat(500)]) {
    const res = await app.inject({ url: '/r', headers: { cookie } })
    t.equal(res.statusCode, 200, JSON.stringify(cookie))
  }
})

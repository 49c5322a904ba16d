import t from 'tap'
import { tracingChannel } from 'node:diagnostics_channel'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { FastifyInstance } from 'fastify'
import { AsyncLocalStorage } from 'node:async_hooks'
import { createServer, IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { Socket } from 'node:net'
import { context, ROOT_CONTEXT, trace, type Context, type ContextManager, type Span, type Tracer } from '@opentelemetry/api'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base'
import { CookieStore, MemoryStore, tracingChannels, type SessionRecord, type SessionStore } from '../src/index'
import { build, sessionCookie } from './helpers/app'
import { idOf, seed } from './helpers/faulty-app'
import { Gate } from './helpers/gate'
import { failOnHang } from './helpers/hang'
import { logLines } from './helpers/log-lines'
import { stateRoutes } from './helpers/routes'
import { StoreSpy } from './helpers/store-spy'

type Kind = keyof typeof tracingChannels
type Event = 'start' | 'end' | 'asyncStart' | 'asyncEnd' | 'error'
const KINDS = Object.keys(tracingChannels) as Kind[]
const EVENTS: Event[] = ['start', 'end', 'asyncStart', 'asyncEnd', 'error']

interface Seen {
  kind: Kind
  event: Event
  /** The message's fields when the event was published (messages change as the work goes on). */
  fields: Record<string, unknown>
  message: object
}

/** Subscribes to every event of the channels named, until the test ends. */
function listen (t: tap.Test, kinds: Kind[] = KINDS): Seen[] {
  const seen: Seen[] = []
  for (const kind of kinds) {
    const channel = tracingChannel(tracingChannels[kind])
    const handlers = Object.fromEntries(EVENTS.map((event) => [event, (message: object) => {
      seen.push({ kind, event, fields: { ...message }, message })
    }])) as unknown as Parameters<typeof channel.subscribe>[0]
    channel.subscribe(handlers)
    t.teardown(() => { channel.unsubscribe(handlers) })
  }
  return seen
}

/** `kind:event` of each event, in order, and forgets them. */
function take (seen: Seen[]): string[] {
  return seen.splice(0).map(({ kind, event }) => `${kind}:${event}`)
}

/** The fields of the last event of `kind`. */
function last (seen: Seen[], kind: Kind): Record<string, unknown> | undefined {
  return seen.filter((s) => s.kind === kind).at(-1)?.fields
}

/** The routes of these tests: stateRoutes plus save(), update(), touch(), and a write that waits at a gate. */
function routes (gate?: Gate) {
  return (app: FastifyInstance): void => {
    stateRoutes(app)
    app.post('/save', async (req) => { req.session.set('saved', 'yes'); await req.session.save(); return 'ok' })
    app.post('/count', async (req) => {
      await req.session.update(async (s) => {
        await gate?.wait()
        s.set('n', ((s.get('n') as number | undefined) ?? 0) + 1)
      })
      return 'ok'
    })
    app.get('/touch', async (req) => { req.session.touch(); return 'ok' })
    app.post('/held-put', async (req) => {
      req.session.set('late', 'yes')
      await gate?.wait()
      return 'ok'
    })
    app.post('/held-put-strict', { config: { session: { conflict: 'error' } } }, async (req) => {
      req.session.set('late', 'yes')
      await gate?.wait()
      return 'ok'
    })
    app.get('/opted-out', { config: { session: false } }, async () => 'ok')
  }
}

const WRITE = ['commit:start', 'store:start', 'store:end', 'commit:end', 'store:asyncStart', 'store:asyncEnd', 'commit:asyncStart', 'commit:asyncEnd']

t.test('MemoryStore: loads, commits and store calls publish start, end, asyncStart and asyncEnd in order, with the documented fields', async (t) => {
  const store = new MemoryStore()
  const app = await build({ store }, routes())
  t.teardown(() => app.close())
  const seen = listen(t)

  const cookie = await seed(app)
  const written = seen.slice()
  t.same(take(seen), ['load:start', 'load:end', ...WRITE], 'a new session: a fresh load, then a commit that waits for its write')
  t.same(written[0].fields, { store: 'MemoryStore', async: false, outcome: 'fresh', reason: undefined })
  t.same(written.find((s) => s.kind === 'store')?.fields, { store: 'MemoryStore', async: false, operation: 'set' }, 'store: start')
  t.same(written.filter((s) => s.kind === 'commit').map((s) => s.fields.async), [false, true, true, true], 'async is set before end')
  t.same(last(written, 'commit'), { store: 'MemoryStore', async: true, trigger: 'end', outcome: 'written', conflicts: 0 })

  await app.inject({ url: '/dump', headers: { cookie } })
  const read = seen.slice()
  t.same(take(seen), ['load:start', 'store:start', 'store:end', 'load:end', 'store:asyncStart', 'store:asyncEnd', 'load:asyncStart', 'load:asyncEnd', 'commit:start', 'commit:end'])
  t.same(last(read, 'load'), { store: 'MemoryStore', async: true, outcome: 'found', reason: undefined })
  t.equal(read.find((s) => s.kind === 'store')?.fields.operation, 'get')
  t.same(last(read, 'commit'), { store: 'MemoryStore', async: false, trigger: 'end', outcome: 'nothing', conflicts: 0 }, 'nothing to commit: no waiting')

  await app.inject({ method: 'POST', url: '/save', headers: { cookie } })
  t.same(seen.filter((s) => s.kind === 'commit' && s.event === 'asyncEnd').map((s) => [s.fields.trigger, s.fields.outcome]), [['save', 'written']], 'save()')
  t.equal(last(seen, 'commit')?.outcome, 'nothing', 'the end of that request has nothing left to write')
  take(seen)

  await app.inject({ method: 'POST', url: '/count', headers: { cookie } })
  t.same(seen.filter((s) => s.kind === 'commit' && s.fields.trigger === 'update').map((s) => s.event), ['start', 'end', 'asyncStart', 'asyncEnd'])
  t.same(seen.find((s) => s.kind === 'commit' && s.event === 'asyncEnd')?.fields, { store: 'MemoryStore', async: true, trigger: 'update', outcome: 'written', conflicts: 0 })
  take(seen)

  const realNow = Date.now
  t.capture(Date, 'now', () => realNow() + 60_000)
  await app.inject({ url: '/touch', headers: { cookie } })
  t.same(seen.filter((s) => s.kind === 'store').map((s) => s.fields.operation), ['get', 'get', 'get', 'get', 'touch', 'touch', 'touch', 'touch'])
  t.same(last(seen, 'commit'), { store: 'MemoryStore', async: true, trigger: 'end', outcome: 'touched', conflicts: 0 }, 'touch()')
})

t.test('CookieStore: loads and commits that do not wait publish start and end only, and no store calls', async (t) => {
  const app = await build({ store: new CookieStore() }, routes())
  t.teardown(() => app.close())
  const seen = listen(t)
  const cookie = await seed(app)
  t.same(take(seen), ['load:start', 'load:end', 'commit:start', 'commit:end'])
  const res = await app.inject({ method: 'POST', url: '/put', query: { key: 'more', value: 'x' }, headers: { cookie } })
  t.equal(res.statusCode, 200)
  const fields = seen.map((s) => s.fields)
  t.same(take(seen), ['load:start', 'load:end', 'commit:start', 'commit:end'])
  t.same(fields[1], { store: 'CookieStore', async: false, outcome: 'found', reason: undefined })
  t.same(fields[3], { store: 'CookieStore', async: false, trigger: 'end', outcome: 'written', conflicts: 0 })

  await app.inject({ url: '/dump', headers: { cookie: 'sid=' + 'A'.repeat(120) } })
  t.same(seen[1].fields, { store: 'CookieStore', async: false, outcome: 'refused', reason: seen[1].fields.reason })
  t.type(seen[1].fields.reason, 'string', 'a sealed cookie that does not open: its reason')
})

t.test('a commit that fails without waiting publishes start, error and end', async (t) => {
  const app = await build({ store: new CookieStore() }, routes())
  t.teardown(() => app.close())
  const seen = listen(t, ['commit'])
  const res = await app.inject({ method: 'POST', url: '/put', query: { key: 'big', value: 'x'.repeat(5000) } })
  t.equal(res.statusCode, 500)
  t.equal(res.json().code, 'FST_SESS_COOKIE_TOO_LARGE')
  t.same(take(seen.slice(0, 3)), ['commit:start', 'commit:error', 'commit:end'])
  t.match(seen[2].fields, { async: false, outcome: undefined, error: { code: 'FST_SESS_COOKIE_TOO_LARGE' } })
})

t.test('a refused cookie publishes its reason; a forged one is refused before any store call', async (t) => {
  const store = new StoreSpy()
  const app = await build({ store }, routes(), { logger: false })
  t.teardown(() => app.close())
  const cookie = await seed(app)
  const seen = listen(t, ['load'])
  const refusals = {
    'malformed cookie': 'sid=garbage',
    'bad signature': `sid=${idOf(cookie)}.${'A'.repeat(43)}`
  }
  for (const [reason, forged] of Object.entries(refusals)) {
    await app.inject({ url: '/dump', headers: { cookie: forged } })
    t.same(take(seen), ['load:start', 'load:end'], `${reason}: refused before any store call`)
  }
  await app.inject({ url: '/dump', headers: { cookie: 'sid=garbage' } })
  t.same(seen.at(-1)?.fields, { store: 'StoreSpy', async: false, outcome: 'refused', reason: 'malformed cookie' })
  seen.splice(0)
  await app.inject({ method: 'POST', url: '/logout', headers: { cookie } })
  seen.splice(0)
  await app.inject({ url: '/dump', headers: { cookie } })
  t.same(seen.at(-1)?.fields, { store: 'StoreSpy', async: true, outcome: 'refused', reason: 'unknown or expired session' })
})

t.test('a refused cookie: the reason is the one logged', async (t) => {
  const { lines, logger } = logLines()
  const app = await build({}, routes(), { logger })
  t.teardown(() => app.close())
  const cookie = await seed(app)
  const seen = listen(t, ['load'])
  await app.inject({ url: '/dump', headers: { cookie: `${cookie.slice(0, -2)}xx` } })
  const logged = lines.find((line) => line.sessionRejected !== undefined)?.sessionRejected
  t.equal(logged, 'bad signature')
  t.equal(last(seen, 'load')?.reason, logged)
})

t.test('a request without a session cookie publishes a fresh load; a route that opted out publishes nothing', async (t) => {
  const app = await build({}, routes())
  t.teardown(() => app.close())
  const seen = listen(t)
  await app.inject('/anon')
  t.same(take(seen), ['load:start', 'load:end'], 'no session touched: a fresh load, no commit')
  await app.inject('/opted-out')
  t.same(take(seen), [], 'config: { session: false }')
})

t.test('fastify.sessions.load() publishes the load of a raw request with a cookie', async (t) => {
  const app = await build({}, routes())
  t.teardown(() => app.close())
  const cookie = await seed(app)
  const seen = listen(t)
  const raw = new IncomingMessage(new Socket())
  raw.headers.cookie = cookie
  const session = await app.sessions.load(raw)
  t.equal(session.get('user'), 'ada')
  t.same(take(seen.slice(0, 2)), ['load:start', 'store:start'])
  t.same(last(seen, 'load'), { store: 'MemoryStore', async: true, outcome: 'found', reason: undefined })
  t.notOk(seen.some((s) => s.kind === 'commit'), 'no commit: nothing is saved unless asked')
})

/** Stores a newer version of the only record, as another process would. */
async function writeElsewhere (t: tap.Test, store: StoreSpy): Promise<void> {
  const key = store.keys[0]
  const record = await store.inner.get(key) as SessionRecord
  t.ok(await store.inner.set(key, { ...record, data: { ...record.data, elsewhere: 'yes' }, version: record.version + 1 }, record.version), 'written elsewhere')
}

/** Runs `url` with the session of `cookie` and lets another process write while it waits at `gate`. */
async function race (t: tap.Test, app: FastifyInstance, store: StoreSpy, gate: Gate, url: string, cookie: string): Promise<number> {
  const held = app.inject({ method: 'POST', url, headers: { cookie } })
  await gate.arrived
  await writeElsewhere(t, store)
  gate.open()
  return (await held).statusCode
}

// An app whose routes can hold a request at a gate, and a stored session to race on.
async function gatedApp (t: tap.Test): Promise<{ store: StoreSpy, gate: Gate, app: FastifyInstance, cookie: string }> {
  const store = new StoreSpy()
  const gate = new Gate()
  const app = await build({ store }, routes(gate))
  t.teardown(() => app.close())
  return { store, gate, app, cookie: await seed(app) }
}

t.test('a conflict publishes the conflicts met and the retries the store saw', async (t) => {
  const { store, gate, app, cookie } = await gatedApp(t)
  const seen = listen(t)
  t.equal(await race(t, app, store, gate, '/held-put', cookie), 200, 'merge: the write is replayed on the newer copy')
  t.same(seen.filter((s) => s.kind === 'store' && s.event === 'start').map((s) => s.fields.operation), ['get', 'set', 'get', 'set'], 'load, lost write, re-read, write')
  t.same(last(seen, 'commit'), { store: 'StoreSpy', async: true, trigger: 'end', outcome: 'written', conflicts: 1 })
})

t.test('a conflict under the error policy publishes FST_SESS_CONFLICT with the conflict counted', async (t) => {
  const { store, gate, app, cookie } = await gatedApp(t)
  const seen = listen(t, ['commit'])
  t.equal(await race(t, app, store, gate, '/held-put-strict', cookie), 409)
  const commit = seen.filter((s) => s.fields.trigger === 'end')
  t.same(commit.map((s) => s.event), ['start', 'end', 'error', 'asyncStart', 'asyncEnd'])
  t.match(commit[2].fields, { outcome: undefined, conflicts: 1, error: { code: 'FST_SESS_CONFLICT' } })
})

t.test('an update that loses a compare-and-set publishes the conflict and the retry that won', async (t) => {
  const { store, gate, app, cookie } = await gatedApp(t)
  const seen = listen(t, ['commit'])
  t.equal(await race(t, app, store, gate, '/count', cookie), 200)
  t.same(seen.find((s) => s.fields.trigger === 'update' && s.event === 'asyncEnd')?.fields,
    { store: 'StoreSpy', async: true, trigger: 'update', outcome: 'written', conflicts: 1 })
})

t.test('a store error publishes error on the store call and on the load or commit it fails', async (t) => {
  const store = new StoreSpy()
  const app = await build({ store }, routes())
  t.teardown(() => app.close())
  const cookie = await seed(app)
  const seen = listen(t)

  store.fail('get')
  const res = await app.inject({ url: '/dump', headers: { cookie } })
  t.equal(res.statusCode, 503)
  t.same(seen.filter((s) => s.kind !== 'commit').map((s) => `${s.kind}:${s.event}`),
    ['load:start', 'store:start', 'store:end', 'load:end', 'store:error', 'store:asyncStart', 'store:asyncEnd', 'load:error', 'load:asyncStart', 'load:asyncEnd'])
  t.match(last(seen, 'store'), { operation: 'get', error: { code: 'FST_SESS_STORE_UNAVAILABLE' } })
  t.match(last(seen, 'load'), { outcome: undefined, error: { code: 'FST_SESS_STORE_UNAVAILABLE' } })
  store.heal()
  seen.splice(0)

  store.fail('set')
  t.equal((await app.inject({ method: 'POST', url: '/put', query: { key: 'k', value: 'v' }, headers: { cookie } })).statusCode, 503)
  t.match(seen.find((s) => s.kind === 'store' && s.event === 'error')?.fields, { operation: 'set', error: { code: 'FST_SESS_STORE_UNAVAILABLE' } })
  t.match(seen.find((s) => s.kind === 'commit' && s.event === 'error')?.fields, { trigger: 'end', outcome: undefined, error: { code: 'FST_SESS_STORE_UNAVAILABLE' } })
})

t.test('a store call that hangs publishes its timeout as the error', async (t) => {
  failOnHang(t)
  const store = new StoreSpy()
  const app = await build({ store, storeTimeout: 0.05 }, routes())
  t.teardown(() => app.close())
  const cookie = await seed(app)
  const seen = listen(t, ['store'])
  store.fail('get', 'hang')
  t.equal((await app.inject({ url: '/dump', headers: { cookie } })).statusCode, 503)
  t.same(seen.map((s) => s.event), ['start', 'end', 'error', 'asyncStart', 'asyncEnd'])
  t.match((seen[2].fields.error as Error).message, /timed out after 0.05 s/)
})

// A store whose class name counts its reads: loads and commits read it for each message they
// build (store calls once, at registration), so a count of zero shows no message was built.
function probeStore (): { store: SessionStore, reads: () => number } {
  let reads = 0
  class ProbeStore extends StoreSpy {}
  Object.defineProperty(ProbeStore, 'name', { get: () => { reads++; return 'ProbeStore' } })
  return { store: new ProbeStore(), reads: () => reads }
}

t.test('nothing is built or published on channels nobody subscribed to', async (t) => {
  const { store, reads } = probeStore()
  const app = await build({ store }, routes())
  t.teardown(() => app.close())
  const before = reads()
  const cookie = await seed(app)
  await app.inject({ method: 'POST', url: '/count', headers: { cookie } })
  await app.inject('/anon')
  t.equal(reads(), before, 'no subscriber: no load or commit message was built')

  const seen = listen(t, ['store'])
  for (const kind of ['load', 'commit'] as const) t.notOk(tracingChannel(tracingChannels[kind]).hasSubscribers, `${kind}: no subscriber`)
  await app.inject({ method: 'POST', url: '/count', headers: { cookie } })
  t.ok(seen.length > 0, 'the store channel publishes')
  t.same(new Set(seen.map((s) => s.kind)), new Set(['store']))
  t.equal(reads(), before, 'with a subscriber to store calls only, still no load or commit message')

  listen(t, ['load'])
  await app.inject({ url: '/dump', headers: { cookie } })
  t.ok(reads() > before, 'a subscriber to loads: the probe sees messages built')
})

t.test('a subscriber that throws does not break the request; Node reports its error as uncaught', async (t) => {
  const uncaught: unknown[] = []
  const saved = process.listeners('uncaughtException')
  process.removeAllListeners('uncaughtException')
  process.on('uncaughtException', (err) => uncaught.push(err))
  t.teardown(() => {
    process.removeAllListeners('uncaughtException')
    for (const listener of saved) process.on('uncaughtException', listener)
  })
  const boom = (): never => { throw new Error('subscriber bug') }
  const handlers = { start: boom, end: boom, asyncStart: boom, asyncEnd: boom, error: boom }
  for (const kind of KINDS) {
    tracingChannel(tracingChannels[kind]).subscribe(handlers)
    t.teardown(() => { tracingChannel(tracingChannels[kind]).unsubscribe(handlers) })
  }
  for (const store of [new MemoryStore(), new CookieStore()]) {
    const app = await build({ store }, routes())
    const cookie = await seed(app)
    const counted = await app.inject({ method: 'POST', url: '/count', headers: { cookie } })
    // A sealed cookie carries the data: the count is in the new one.
    const res = await app.inject({ url: '/dump', headers: { cookie: sessionCookie(counted) ?? cookie } })
    t.equal(res.statusCode, 200, `${store.constructor.name}: the request answers`)
    t.same(res.json().data, { user: 'ada', n: 1 }, `${store.constructor.name}: the session works`)
    await app.close()
  }
  await new Promise((resolve) => setImmediate(resolve))
  t.ok(uncaught.length > 0, `${uncaught.length} subscriber errors reported`)
  t.ok(uncaught.every((err) => (err as Error).message === 'subscriber bug'))
})

/** Every string inside `value`, own properties and error causes included. */
function strings (value: unknown, found: string[] = [], visited = new Set<unknown>()): string[] {
  if (typeof value === 'string') found.push(value)
  if (value === null || typeof value !== 'object' || visited.has(value)) return found
  visited.add(value)
  for (const key of Reflect.ownKeys(value)) {
    if (typeof key === 'string') found.push(key)
    strings((value as Record<string | symbol, unknown>)[key], found, visited)
  }
  return found
}

t.test('messages never carry a session id, a store key, a cookie or session data', async (t) => {
  const keys = new Set<string>()
  class KeyedStore extends MemoryStore {
    override set (key: string, record: SessionRecord, expected: number): Promise<boolean> {
      keys.add(key)
      return super.set(key, record, expected)
    }
  }
  const store = new KeyedStore()
  const app = await build({ store, userKey: 'user' }, (app) => {
    routes()(app)
    app.post('/login', async (req) => {
      await req.session.regenerate()
      req.session.set('user', 'user-ada-1815')
      req.session.set('secret', 'data-value-4711')
      return 'ok'
    })
    app.get('/devices', async (req) => app.sessions.listSessions(req.session.get('user') as string))
    app.post('/everywhere', async (req) => app.sessions.revokeUser(req.session.get('user') as string))
  })
  t.teardown(() => app.close())
  const seen = listen(t)
  const first = await seed(app)
  const login = await app.inject({ method: 'POST', url: '/login', headers: { cookie: first } })
  const cookie = sessionCookie(login) as string
  for (const url of ['/dump', '/touch', '/devices']) await app.inject({ url, headers: { cookie } })
  await app.inject({ method: 'POST', url: '/count', headers: { cookie } })
  await app.inject({ method: 'POST', url: '/save', headers: { cookie } })
  await app.inject({ url: '/dump', headers: { cookie: `${cookie}x` } })
  await app.inject({ method: 'POST', url: '/everywhere', headers: { cookie } })
  await app.inject({ url: '/dump', headers: { cookie } })
  t.same(new Set(seen.map((s) => s.kind)), new Set(KINDS), 'every channel published')
  const operations = new Set(seen.filter((s) => s.kind === 'store').map((s) => s.fields.operation))
  for (const operation of ['get', 'set', 'destroy', 'listUser', 'destroyUser']) t.ok(operations.has(operation), `store operation ${operation}`)

  const secrets = [idOf(first), idOf(cookie), first.slice(4), cookie.slice(4), ...keys, 'user-ada-1815', 'data-value-4711', 'ada']
  t.ok(keys.size >= 2, 'store keys collected')
  const published = seen.flatMap((s) => [...strings(s.fields), ...strings(s.message)])
  t.ok(published.length > 100, `${published.length} strings published`)
  for (const secret of secrets) {
    t.notOk(published.some((text) => text.includes(secret)), `not published: ${secret.slice(0, 12)}…`)
  }
})

// The README's OpenTelemetry subscriber is docs/opentelemetry.mjs, word for word.
const root = join(__dirname, '..')
const OTEL_MODULE = join(root, 'docs', 'opentelemetry.mjs')

t.test('the README shows docs/opentelemetry.mjs as it is', async (t) => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  const section = readme.split('\n## Tracing\n')[1]?.split('\n## ')[0] ?? ''
  const shown = /```js\n([\s\S]*?)```/.exec(section.split('\n### OpenTelemetry\n')[1] ?? '')?.[1]
  t.equal(shown, readFileSync(OTEL_MODULE, 'utf8'))
})

interface OtelModule { sessionSpans: (tracer?: Tracer) => () => void }

async function otel (t: tap.Test): Promise<{ spans: () => ReadableSpan[], tracer: Tracer }> {
  const exporter = new InMemorySpanExporter()
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  const { sessionSpans } = await import(pathToFileURL(OTEL_MODULE).href) as OtelModule
  const tracer = provider.getTracer('test')
  const stop = sessionSpans(tracer)
  t.teardown(async () => {
    stop()
    await provider.shutdown()
  })
  return { spans: () => exporter.getFinishedSpans().splice(0), tracer }
}

function parentOf (span: ReadableSpan): string | undefined {
  return span.parentSpanContext?.spanId
}

// An app with OpenTelemetry subscribed and a stored session; the seeding's spans are dropped.
async function tracedApp (t: tap.Test): Promise<{ store: StoreSpy, app: FastifyInstance, spans: () => ReadableSpan[], cookie: string }> {
  const store = new StoreSpy()
  const app = await build({ store }, routes())
  t.teardown(() => app.close())
  const { spans } = await otel(t)
  const cookie = await seed(app)
  spans()
  return { store, app, spans, cookie }
}

t.test('OpenTelemetry: loads, commits and store calls become spans, store calls nested in what made them', async (t) => {
  const { store, app, spans, cookie } = await tracedApp(t)
  await app.inject({ method: 'POST', url: '/put', query: { key: 'k', value: 'v' }, headers: { cookie } })
  const finished = spans()
  t.same(finished.map((s) => s.name).sort(), ['session.commit', 'session.load', 'session.store.get', 'session.store.set'])
  const byName = Object.fromEntries(finished.map((s) => [s.name, s]))
  const load = byName['session.load']
  const commit = byName['session.commit']
  t.same(load.attributes, { 'session.store': 'StoreSpy', 'session.outcome': 'found' })
  t.same(commit.attributes, { 'session.store': 'StoreSpy', 'session.trigger': 'end', 'session.outcome': 'written', 'session.conflicts': 0 })
  t.same(byName['session.store.get'].attributes, { 'session.store': 'StoreSpy', 'session.operation': 'get' })
  t.equal(parentOf(byName['session.store.get']), load.spanContext().spanId, 'the read is a child of the load')
  t.equal(parentOf(byName['session.store.set']), commit.spanContext().spanId, 'the write is a child of the commit')
  t.equal(parentOf(load), undefined, 'no active span: the load is a root')
  t.equal(load.spanContext().traceId, byName['session.store.get'].spanContext().traceId)
  t.ok(finished.every((s) => s.ended && s.status.code === 0), 'ended, status unset')
})

// The context manager an OpenTelemetry SDK registers, reduced to what spans need here.
class StorageContextManager implements ContextManager {
  #storage = new AsyncLocalStorage<Context>()
  active (): Context { return this.#storage.getStore() ?? ROOT_CONTEXT }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>> (ctx: Context, fn: F, thisArg?: ThisParameterType<F>, ...args: A): ReturnType<F> {
    return this.#storage.run(ctx, () => fn.apply(thisArg, args))
  }

  bind<T> (_ctx: Context, target: T): T { return target }
  enable (): this { return this }
  disable (): this { return this }
}

t.test('OpenTelemetry: under a context manager, loads and commits are children of the span active in the request', async (t) => {
  t.ok(context.setGlobalContextManager(new StorageContextManager()), 'registered')
  t.teardown(() => { context.disable() })
  const { spans, tracer } = await otel(t)
  // What an HTTP instrumentation does: each request runs in the context of its own span.
  const requestSpans: Span[] = []
  const serverFactory = (handler: (req: IncomingMessage, res: ServerResponse) => void): Server => createServer((req, res) => {
    const span = tracer.startSpan('request')
    requestSpans.push(span)
    context.with(trace.setSpan(ROOT_CONTEXT, span), () => handler(req, res))
  })
  const app = await build({}, routes(), { serverFactory })
  t.teardown(() => app.close())
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const cookie = await seed(app)
  spans()
  const res = await fetch(`${base}/put?key=k&value=v`, { method: 'POST', headers: { cookie } })
  t.equal(res.status, 200)
  const byName = Object.fromEntries(spans().map((s) => [s.name, s]))
  const requestId = requestSpans[0]?.spanContext().spanId
  t.ok(requestId, 'the request had its span')
  t.equal(parentOf(byName['session.load']), requestId, 'the load')
  t.equal(parentOf(byName['session.commit']), requestId, 'the commit')
  t.equal(parentOf(byName['session.store.set']), byName['session.commit'].spanContext().spanId, 'the write, inside the commit')
})

t.test('OpenTelemetry: a request in flight when the subscriber starts ends without a span and without an error', async (t) => {
  const gate = new Gate()
  const app = await build({}, routes(gate))
  t.teardown(() => app.close())
  const cookie = await seed(app)
  const uncaught: unknown[] = []
  const record = (err: unknown): void => { uncaught.push(err) }
  process.prependListener('uncaughtException', record)
  t.teardown(() => { process.removeListener('uncaughtException', record) })
  const held = app.inject({ method: 'POST', url: '/held-put', headers: { cookie } })
  await gate.arrived
  const { spans } = await otel(t)
  gate.open()
  t.equal((await held).statusCode, 200)
  await new Promise((resolve) => setImmediate(resolve))
  t.same(uncaught, [])
  t.same(spans().map((s) => s.name).sort(), ['session.commit', 'session.store.set'], 'the commit started after: its spans')
})

t.test('OpenTelemetry: a refused cookie and a failed store call', async (t) => {
  const { store, app, spans, cookie } = await tracedApp(t)
  await app.inject({ url: '/dump', headers: { cookie: 'sid=garbage' } })
  t.match(spans().find((s) => s.name === 'session.load')?.attributes, { 'session.outcome': 'refused', 'session.reason': 'malformed cookie' })

  store.fail('get')
  await app.inject({ url: '/dump', headers: { cookie } })
  const failed = spans().filter((s) => s.name === 'session.load' || s.name === 'session.store.get')
  t.equal(failed.length, 2)
  for (const span of failed) {
    t.equal(span.status.code, 2, `${span.name}: status ERROR`)
    t.match(span.status.message, /store unavailable|read/i)
    t.equal(span.events[0]?.name, 'exception', `${span.name}: the exception recorded`)
  }
})

t.test('OpenTelemetry: a CookieStore session that never waits still gets its spans ended', async (t) => {
  const app = await build({ store: new CookieStore() }, routes())
  t.teardown(() => app.close())
  const { spans } = await otel(t)
  const cookie = await seed(app)
  await app.inject({ url: '/dump', headers: { cookie } })
  const finished = spans()
  t.same(finished.map((s) => s.name), ['session.load', 'session.commit', 'session.load', 'session.commit'])
  t.same(finished.map((s) => s.attributes['session.outcome']), ['fresh', 'written', 'found', 'nothing'])
})

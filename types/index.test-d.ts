import Fastify from 'fastify'
import { expectAssignable, expectError, expectNotAssignable, expectType } from 'tsd'
import fastifySessions, {
  CookieStore,
  CookieTooLargeError,
  InsideUpdateError,
  MemoryStore,
  UnusableRecordError,
  Session,
  type FastifySessionsOptions,
  type SealedSession,
  type SessionRecord,
  type SessionStore,
  type StatelessStore
} from '..'

declare module '..' {
  interface SessionData {
    userId: string
    cart: string[]
  }
}

const app = Fastify()

// Registration options
app.register(fastifySessions, { secret: 'x'.repeat(32) })
app.register(fastifySessions, {
  secret: ['current'.repeat(8), 'previous'.repeat(8)],
  store: new MemoryStore({ max: 1000, sweepInterval: 30 }),
  cookieName: 'sid',
  cookie: { path: '/', domain: 'example.com', httpOnly: true, secure: 'auto', sameSite: 'strict', partitioned: false, maxAge: 3600 },
  idleTimeout: 1800,
  absoluteTimeout: 86400,
  saveUninitialized: false,
  rolling: true,
  conflict: 'error',
  encryptAtRest: false,
  crypto: { offload: 'never', threads: 2 },
  storeTimeout: 0.5
})
expectError(app.register(fastifySessions, {}))
expectError(app.register(fastifySessions, { secret: 'x'.repeat(32), storeTimeout: '2s' }))
expectError(app.register(fastifySessions, { secret: 'x'.repeat(32), conflict: 'ignore' }))
expectError(app.register(fastifySessions, { secret: 'x'.repeat(32), cookie: { sameSite: 'sometimes' } }))
expectError(app.register(fastifySessions, { secret: 'x'.repeat(32), idleTimeout: '1h' }))

// Typed data through declaration merging
app.get('/', async (request) => {
  const session = request.session
  expectType<Session>(session)
  expectType<string>(session.id)
  expectType<boolean>(session.isNew)
  expectType<string | undefined>(session.get('userId'))
  expectType<string[] | undefined>(session.get('cart'))
  expectType<unknown>(session.get('anything-else'))
  session.set('userId', 'u1')
  session.set('cart', ['a'])
  session.set('userId', undefined)
  expectError(session.set('cart', 1))
  expectError(session.set('userId', 42))
  expectType<boolean>(session.has('cart'))
  session.delete('cart')
  session.clear()
  expectAssignable<{ userId?: string }>(session.data())
  session.flash('info', 'saved')
  expectType<string[]>(session.flashes('info'))
  expectType<Record<string, string[]>>(session.flashes())
  expectType<Promise<void>>(session.regenerate())
  expectType<Promise<void>>(session.regenerate(['cart']))
  expectType<Promise<void>>(session.destroy())
  expectType<Promise<void>>(session.save())
  expectType<Promise<void>>(session.reload())
  session.touch()
  session.options({ maxAge: 60, sameSite: 'lax' })
  expectError(session.options({ sameSite: 'sometimes' }))
  return 'ok'
})

// Route opt-out
app.get('/health', { config: { session: false } }, async () => 'ok')
app.post('/checkout', { config: { session: { conflict: 'error' } } }, async () => 'ok')
expectError(app.post('/bad', { config: { session: { conflict: 'ignore' } } }, async () => 'ok'))

// A custom store that satisfies the contract
class MyStore implements SessionStore {
  async get (key: string): Promise<SessionRecord | undefined> { return key === '' ? undefined : undefined }
  async set (_key: string, _record: SessionRecord, expectedVersion: number): Promise<boolean> { return expectedVersion === 0 }
  async destroy (_key: string): Promise<void> {}
  async touch (_key: string, _expiresAt: number): Promise<boolean> { return false }
}
// touch reports whether the record existed.
expectNotAssignable<SessionStore>({ get: async () => undefined, set: async () => true, destroy: async () => {}, touch: async () => 'yes' })
expectType<"FST_SESS_IN_UPDATE">(new InsideUpdateError('save').code)
expectType<"FST_SESS_UNUSABLE_RECORD">(new UnusableRecordError('truncated').code)
app.register(fastifySessions, { secret: 'x'.repeat(32), store: new MyStore() })
expectError(app.register(fastifySessions, { secret: 'x'.repeat(32), store: { get: async () => undefined } }))

// The stateless cookie store, and encryption at rest with the worker pool
app.register(fastifySessions, { secret: 'x'.repeat(32), store: new CookieStore({ maxCookieBytes: 4000 }), crypto: { offload: 'auto', threads: 2 } })
app.register(fastifySessions, { secret: 'x'.repeat(32), encryptAtRest: true, crypto: { offload: 'always' } })
expectError(app.register(fastifySessions, { secret: 'x'.repeat(32), crypto: { offload: 'sometimes' } }))
expectError(new CookieStore({ maxCookieBytes: '4096' }))
expectAssignable<StatelessStore>(new CookieStore())
expectType<number>(new CookieStore().maxCookieBytes)
expectType<SealedSession | undefined>(new CookieStore().decode(Buffer.from('[]')))
expectError(new CookieStore().decode('[]'))
expectAssignable<Uint8Array>(new CookieStore().encode({ id: 'x', data: {}, createdAt: 1, lastActive: 1 }))
// A stateless store of your own: bytes out, a Buffer back.
expectAssignable<StatelessStore>({ stateless: true as const, maxCookieBytes: 4096, encode: () => new Uint8Array(2), decode: (_payload: Buffer) => undefined })
expectNotAssignable<StatelessStore>({ stateless: true as const, maxCookieBytes: 4096, encode: () => '{}', decode: (_payload: Buffer) => undefined })
expectType<"FST_SESS_COOKIE_TOO_LARGE">(new CookieTooLargeError(5000, 4096).code)

// Log out everywhere
app.register(fastifySessions, { secret: 'x'.repeat(32), userKey: 'userId' })
app.register(fastifySessions, { secret: 'x'.repeat(32), userKey: (data) => data.userId })
app.register(fastifySessions, {
  secret: 'x'.repeat(32),
  store: new CookieStore({ revocations: new MemoryStore(), revocationCache: 5 }),
  userKey: 'userId'
})
expectError(app.register(fastifySessions, { secret: 'x'.repeat(32), userKey: 42 }))
expectType<Promise<number | undefined>>(app.sessions.revokeUser('ada'))
expectType<Promise<number | undefined>>(app.sessions.revokeUser(42))
app.sessions.listSessions('ada', { meta: (data) => ({ device: data.device }) }).then((list) => {
  expectType<number>(list[0].createdAt)
  expectType<number>(list[0].lastActive)
  expectType<number>(list[0].expiresAt)
  expectType<unknown>(list[0].device)
})
expectError(app.sessions.revokeUser({ id: 1 }))
const indexed: SessionStore = {
  get: async () => undefined,
  set: async () => true,
  destroy: async () => {},
  listUser: async (user: string) => [{ key: user, record: { data: {}, version: 1, createdAt: 0, expiresAt: 1, user } }],
  destroyUser: async () => 0
}
expectAssignable<SessionStore>(indexed)

// PostgresStore: a pg Pool, or anything with query(text, values) resolving rows and rowCount.
import { Pool } from 'pg'
import { PostgresStore, type PostgresStoreOptions } from '..'
const pgStore = new PostgresStore({ pool: new Pool(), table: 'app.sessions', createTable: true, prune: false, prepare: true, onError: (err) => { expectType<Error>(err) } })
expectAssignable<SessionStore>(pgStore)
expectType<Promise<number>>(pgStore.prune())
expectAssignable<PostgresStoreOptions>({ pool: { query: async (text: string, values?: unknown[]) => ({ rowCount: values?.length ?? 0, rows: [{ text }] }) } })
expectError(new PostgresStore({ pool: new Pool(), prune: true }))
expectError(new PostgresStore({ table: 'sessions' }))
expectError(new PostgresStore({ pool: new Pool(), prepare: 'yes' }))

// MongoStore: a collection of the official mongodb driver, which you built and whose client you close.
import { MongoClient } from 'mongodb'
import { MongoStore, type MongoSessionDocument, type MongoStoreOptions, type UserSession } from '..'
const mongoClient = new MongoClient('mongodb://127.0.0.1:27017')
const mongoStore = new MongoStore({ collection: mongoClient.db('app').collection('sessions', { writeConcern: { w: 'majority' } }), createIndexes: false })
expectAssignable<SessionStore>(mongoStore)
expectType<Promise<UserSession[]>>(mongoStore.listUser('digest'))
expectType<Promise<number>>(mongoStore.destroyUser('digest'))
expectAssignable<MongoStoreOptions>({ collection: mongoClient.db('app').collection<MongoSessionDocument>('sessions') })
expectError(new MongoStore({ createIndexes: true }))
expectError(new MongoStore({ collection: {} }))
expectError(new MongoStore({ collection: mongoClient.db('app').collection('sessions'), createIndexes: 'yes' }))
expectError(new MongoStore({ collection: mongoClient.db('app').collection('sessions'), mongoUrl: 'mongodb://127.0.0.1' }))

// FileStore: a directory on a local filesystem.
import { FileStore, type FileStoreOptions } from '..'
const fileStore = new FileStore({ dir: '/var/lib/app/sessions', fsync: true, lockStale: 10, sweepInterval: false, onError: (err) => { expectType<Error>(err) } })
expectAssignable<SessionStore>(fileStore)
expectType<Promise<number>>(fileStore.sweep())
expectAssignable<FileStoreOptions>({ dir: 'sessions' })
expectError(new FileStore({ fsync: true }))
expectError(new FileStore({ dir: 'sessions', fsync: 'yes' }))
expectError(new FileStore({ dir: 'sessions', sweepInterval: true }))

// MemcachedStore: a memjs client, or anything with memjs' perform(), incrSeq() and seq.
import { Client as MemjsClientClass } from 'memjs'
import { MemcachedStore, RecordTooLargeError, type MemcachedStoreOptions, type MemjsClient } from '..'
const memjsClient = MemjsClientClass.create('127.0.0.1:11211', { retries: 1, timeout: 0.5 })
const mcStore = new MemcachedStore({ client: memjsClient, prefix: 'app:' })
expectAssignable<SessionStore>(mcStore)
expectAssignable<MemjsClient>(memjsClient)
expectAssignable<MemcachedStoreOptions>({ client: memjsClient })
expectType<Promise<void>>(mcStore.close())
expectError(mcStore.listUser)
expectError(new MemcachedStore({ prefix: 'sess:' }))
expectError(new MemcachedStore({ client: memjsClient, prefix: 7 }))
expectError(new MemcachedStore({ client: memjsClient, ttl: 3600 }))
expectError(new MemcachedStore({ client: { get: async () => null } }))
expectAssignable<RangeError>(new RecordTooLargeError(2_000_000, "memcached's item size limit"))

// Cross-site request forgery: registration, per route, and the session's tokens
import { CrossOriginError, CsrfTokenError, type RouteCsrfOptions, type SessionCsrfOptions } from '..'
app.register(fastifySessions, { secret: 'x'.repeat(32), csrf: false })
app.register(fastifySessions, { secret: 'x'.repeat(32), csrf: { trustedOrigins: ['https://app.example.com'], reportOnly: true, token: true } })
expectAssignable<SessionCsrfOptions>({})
expectError(app.register(fastifySessions, { secret: 'x'.repeat(32), csrf: { trustedOrigins: 'https://app.example.com' } }))
expectError(app.register(fastifySessions, { secret: 'x'.repeat(32), csrf: { reportOnly: 'yes' } }))
expectError(app.register(fastifySessions, { secret: 'x'.repeat(32), csrf: 'off' }))
app.post('/webhook', { config: { session: { csrf: false } } }, async () => 'ok')
app.post('/form', { config: { session: { conflict: 'error', csrf: { token: true, reportOnly: false } } } }, async () => 'ok')
expectAssignable<RouteCsrfOptions>({ token: true })
// Fastify infers the route's config type from the literal, so wrong route values are
// refused when the route is added (FST_SESS_INVALID_OPTION), not by the compiler.
app.post('/check', async (request) => {
  expectType<string>(request.session.csrfToken())
  expectType<boolean>(request.session.verifyCsrfToken(request.headers['x-csrf-token']))
  expectType<boolean>(request.session.verifyCsrfToken(request.body))
  return 'ok'
})
expectType<'FST_SESS_CROSS_ORIGIN'>(new CrossOriginError().code)
expectType<'FST_SESS_CSRF_TOKEN'>(new CsrfTokenError().code)

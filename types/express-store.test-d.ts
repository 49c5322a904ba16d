import Fastify from 'fastify'
import session from 'express-session'
import { RedisStore as ConnectRedis } from 'connect-redis'
import createMemoryStore from 'memorystore'
import { Redis } from 'ioredis'
import { expectAssignable, expectError, expectNotAssignable, expectType } from 'tsd'
import fastifySessions, { ExpressStoreError, fromExpressStore, type ExpressStore, type SessionStore } from '..'

// fromExpressStore: an express-session store in, a store of this plugin out.
const app = Fastify()
const fromRedis = fromExpressStore(new ConnectRedis({ client: new Redis({ lazyConnect: true }) }))
expectType<SessionStore>(fromRedis)
app.register(fastifySessions, { secret: 'x'.repeat(32), store: fromRedis })
const MemoryStore = createMemoryStore(session)
expectType<SessionStore>(fromExpressStore(new MemoryStore({ checkPeriod: 60_000 })))
expectAssignable<ExpressStore>(new session.MemoryStore())
expectAssignable<ExpressStore>({
  get (_sid: string, callback: (err: unknown, session?: unknown) => void) { callback(null, undefined) },
  set (_sid: string, _session: unknown, callback: (err?: unknown) => void) { callback() },
  destroy (_sid: string, callback: (err?: unknown) => void) { callback() }
})
expectNotAssignable<ExpressStore>({ get (_sid: string) {}, set () {} })
expectError(fromExpressStore({ get: async (_key: string) => undefined }))
expectError(fromExpressStore())

expectType<'FST_SESS_EXPRESS_STORE'>(new ExpressStoreError('store').code)
expectAssignable<Error>(new ExpressStoreError('store'))

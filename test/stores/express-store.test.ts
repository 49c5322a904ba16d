import t from 'tap'
import session from 'express-session'
import connectPgSimple from 'connect-pg-simple'
import { RedisStore as ConnectRedis } from 'connect-redis'
import createMemoryStore from 'memorystore'
import { fromExpressStore } from '../../src/index'
import { conformance } from '../../src/testing'
import { postgresUnavailable, startPostgres } from '../helpers/postgres-server'
import { redisForTest } from '../helpers/redis-servers'

const MemoryStore = createMemoryStore(session)
const PGStore = connectPgSimple(session)

conformance({ test: (name, fn) => t.test(name, fn), name: 'memorystore', store: () => fromExpressStore(new MemoryStore({})) })

t.test('connect-redis 8 on a real redis-server', async (t) => {
  const client = await redisForTest(t)
  if (client === undefined) return
  let sequence = 0
  conformance({ test: (name, fn) => t.test(name, fn), name: 'connect-redis', store: () => fromExpressStore(new ConnectRedis({ client, prefix: `c${sequence++}:` })) })
})

t.test('connect-pg-simple on a real PostgreSQL', async (t) => {
  if (postgresUnavailable(t)) return
  const server = await startPostgres()
  t.teardown(() => server.stop())
  const pool = server.pool()
  conformance({ test: (name, fn) => t.test(name, fn), name: 'connect-pg-simple', store: () => fromExpressStore(new PGStore({ pool, createTableIfMissing: true, pruneSessionInterval: false })) })
})

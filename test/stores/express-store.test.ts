import t from 'tap'
import session from 'express-session'
import connectPgSimple from 'connect-pg-simple'
import { RedisStore as ConnectRedis } from 'connect-redis'
import createMemoryStore from 'memorystore'
import { fromExpressStore } from '../../src/index'
import { conformance } from '../../src/testing'
import { record, uniqueKey } from '../helpers/record'
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

  // What the README says cannot hold: each adapter queues its own process's writes only.
  t.test('two adapters on one backend, as two processes: both writes of one version succeed, and one of them is lost', async (t) => {
    const [one, two] = [fromExpressStore(new ConnectRedis({ client, prefix: 'two:' })), fromExpressStore(new ConnectRedis({ client, prefix: 'two:' }))]
    const key = uniqueKey()
    await one.set(key, record({ n: 0 }), 0)
    const written = await Promise.all([one.set(key, record({ by: 'one' }, 2), 1), two.set(key, record({ by: 'two' }, 2), 1)])
    t.same(written, [true, true], 'no compare-and-set between them')
    const kept = await one.get(key)
    t.equal(kept?.version, 2)
    t.ok(kept?.data.by === 'one' || kept?.data.by === 'two', `one write kept (${String(kept?.data.by)}), the other lost`)
  })
})

t.test('connect-pg-simple on a real PostgreSQL', async (t) => {
  if (postgresUnavailable(t)) return
  const server = await startPostgres()
  t.teardown(() => server.stop())
  const pool = server.pool()
  conformance({ test: (name, fn) => t.test(name, fn), name: 'connect-pg-simple', store: () => fromExpressStore(new PGStore({ pool, createTableIfMissing: true, pruneSessionInterval: false })) })
})

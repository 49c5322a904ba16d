import session from 'express-session'
import connectPgSimple from 'connect-pg-simple'
import { RedisStore as ConnectRedis } from 'connect-redis'
import createMemoryStore from 'memorystore'
import type { Redis } from 'ioredis'
import type { Pool } from 'pg'
import type { ExpressStore } from '../../src/index'

// The express-session stores fromExpressStore is tested with, each able to show what its
// backend holds: memorystore in process, connect-redis 8 on a real redis-server,
// connect-pg-simple on a real PostgreSQL.

export const MemoryStore: ReturnType<typeof createMemoryStore> = createMemoryStore(session)
export const PGStore: ReturnType<typeof connectPgSimple> = connectPgSimple(session)
export { ConnectRedis }

/** One express-session store and a look at its backend. */
export interface Kept {
  store: ExpressStore
  /** What the backend holds: each key as the store was given it, and the stored session as JSON. */
  held (): Promise<Map<string, string>>
  /**
   * Seconds the backend keeps `key` from now, as it computed them from the session's cookie
   * (by the application's clock where it had one).
   */
  secondsLeft (key: string): Promise<number>
}

/** Makes a fresh store (its own prefix or table) for each use. */
export interface ExpressBackend {
  name: string
  /** Whether the backend drops an expired session by the application's clock (faked in tests). */
  appClock: boolean
  make (): Promise<Kept>
}

function all (store: InstanceType<typeof MemoryStore>): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => store.all((err, sessions) => err ? reject(err) : resolve(sessions as unknown as Record<string, unknown>)))
}

export function memoryBackend (): ExpressBackend {
  return {
    name: 'memorystore',
    appClock: true,
    async make () {
      const store = new MemoryStore({})
      // The cache keeps an entry for the maxAge the store read from the cookie, by Date.now.
      const cache = (store as unknown as { store: { peek (key: string): unknown, dump (): Array<{ k: string, e: number }> } }).store
      return {
        store,
        held: async () => new Map(Object.entries(await all(store)).map(([key, value]) => [key, JSON.stringify(value)])),
        secondsLeft: async (key) => {
          const entry = cache.dump().find((each) => each.k === key)
          return entry === undefined ? 0 : (entry.e - Date.now()) / 1000
        }
      }
    }
  }
}

let sequence = 0

export function redisBackend (client: Redis): ExpressBackend {
  return {
    name: 'connect-redis',
    appClock: false,
    async make () {
      const prefix = `x${process.pid}_${sequence++}:`
      return {
        store: new ConnectRedis({ client, prefix }),
        async held () {
          const keys = await client.keys(`${prefix}*`)
          return new Map(await Promise.all(keys.map(async (key) => [key.slice(prefix.length), await client.get(key) as string] as const)))
        },
        secondsLeft: async (key) => (await client.pttl(prefix + key)) / 1000
      }
    }
  }
}

export function postgresBackend (pool: Pool): ExpressBackend {
  return {
    name: 'connect-pg-simple',
    appClock: false,
    async make () {
      // A schema each: the table's constraint and index names are fixed, and unique per schema.
      const schema = `x${process.pid}_${sequence++}`
      await pool.query(`CREATE SCHEMA "${schema}"`)
      const table = `"${schema}"."session"`
      return {
        store: new PGStore({ pool, schemaName: schema, createTableIfMissing: true, pruneSessionInterval: false }),
        async held () {
          const { rows } = await pool.query<{ sid: string, sess: string }>(`SELECT sid, sess::text AS sess FROM ${table}`)
          return new Map(rows.map((row) => [row.sid, row.sess]))
        },
        async secondsLeft (key) {
          // The column is a timestamp without time zone, written through to_timestamp(): read back
          // the same way. The store computed it from the application's clock: so is what is left.
          const { rows } = await pool.query<{ at: string }>(`SELECT extract(epoch FROM expire::timestamptz) AS at FROM ${table} WHERE sid = $1`, [key])
          return rows.length === 0 ? 0 : Number(rows[0].at) - Date.now() / 1000
        }
      }
    }
  }
}

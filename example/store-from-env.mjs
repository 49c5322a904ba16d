// Which store the demo runs on: SESSION_STORE names it, and the variables below say where it
// is. Each client library is imported only when its store is chosen, so `npm start` on the
// memory store needs none of them.
import { resolve } from 'node:path'
import { FileStore, MemcachedStore, MemoryStore, PostgresStore, RedisStore } from 'fastify-sessions'

/** The default address of each server, as the README's "The demo" lists them. */
export const DEFAULTS = Object.freeze({
  REDIS_URL: 'redis://127.0.0.1:6379',
  MEMCACHED_SERVERS: '127.0.0.1:11211',
  SESSION_DIR: './sessions'
})

// Store clients and stores report background failures (a lost connection, a failed sweep)
// through callbacks: the demo logs them all the same way.
function warning (log, what) {
  return (err) => log.warn({ err }, what)
}

function setting (env, name) {
  const value = env[name]
  return value === undefined || value === '' ? DEFAULTS[name] : value
}

async function redisStore (env, log) {
  const { Redis } = await import('ioredis')
  // Fail a command after one reconnection attempt rather than queueing while Redis is down.
  const client = new Redis(setting(env, 'REDIS_URL'), { maxRetriesPerRequest: 1 })
  client.on('error', warning(log, 'redis client error'))
  return { store: new RedisStore({ client }), close: async () => { client.disconnect() } }
}

async function postgresStore (env, log) {
  const { Pool } = await import('pg')
  // Without DATABASE_URL, pg reads the usual PGHOST, PGUSER, PGDATABASE... variables.
  const pool = new Pool({ connectionString: env.DATABASE_URL || undefined, connectionTimeoutMillis: 2000 })
  // An idle connection that breaks emits 'error' on the pool, which would end the process.
  pool.on('error', warning(log, 'idle PostgreSQL connection lost'))
  const store = new PostgresStore({ pool, createTable: true, onError: warning(log, 'session pruning failed') })
  return { store, close: async () => { await store.close(); await pool.end() } }
}

async function memcachedStore (env, log) {
  const { Client } = await import('memjs')
  const client = Client.create(setting(env, 'MEMCACHED_SERVERS'), { timeout: 0.5, logger: { log: (msg) => log.warn(msg) } })
  return { store: new MemcachedStore({ client }), close: async () => { client.close() } }
}

async function fileStore (env, log) {
  const store = new FileStore({ dir: resolve(setting(env, 'SESSION_DIR')), onError: warning(log, 'session sweep failed') })
  return { store, close: () => store.close() }
}

async function memoryStore () {
  const store = new MemoryStore()
  return { store, close: () => store.close() }
}

const STORES = Object.freeze({ memory: memoryStore, redis: redisStore, postgres: postgresStore, memcached: memcachedStore, file: fileStore })

/** The names SESSION_STORE accepts. */
export const STORE_NAMES = Object.freeze(Object.keys(STORES))

/**
 * Builds the store SESSION_STORE names (memory when it is unset or empty) and a `close()` that
 * releases it and its client. An unknown name throws, naming the variable.
 */
export async function storeFromEnv (env, log) {
  const name = env.SESSION_STORE || 'memory'
  if (!Object.hasOwn(STORES, name)) {
    throw new Error(`SESSION_STORE must be one of ${STORE_NAMES.join(', ')}; got ${JSON.stringify(name)}`)
  }
  return { name, ...(await STORES[name](env, log)) }
}

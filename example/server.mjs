// `npm start`: builds the package, then runs this demo on http://127.0.0.1:3000.
// Environment: SESSION_STORE (memory, redis, postgres, memcached or file) and the variables of
// that store (REDIS_URL, DATABASE_URL, MEMCACHED_SERVERS, SESSION_DIR), SESSION_SECRET
// (>= 32 characters), PORT (3000), HOST (127.0.0.1), LOG_LEVEL (info).
import { buildApp } from './app.mjs'

function port (value) {
  if (value === undefined || value === '') return 3000
  const n = Number(value)
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    console.error(`PORT must be an integer from 0 to 65535, got ${JSON.stringify(value)}`)
    process.exit(1)
  }
  return n
}

const listenPort = port(process.env.PORT)
let app
try {
  app = await buildApp({ logger: { level: process.env.LOG_LEVEL || 'info' } })
} catch (err) {
  // A configuration mistake (SESSION_STORE, SESSION_SECRET): its message says which.
  console.error(`could not start the demo: ${err.message}`)
  process.exit(1)
}

async function shutdown (signal) {
  app.log.info({ signal }, 'shutting down')
  // A failing close() rejects, which ends the process with an error as it should.
  await app.close()
  process.exit(0)
}
process.once('SIGINT', shutdown)
process.once('SIGTERM', shutdown)

try {
  await app.listen({ port: listenPort, host: process.env.HOST || '127.0.0.1' })
} catch (err) {
  app.log.error({ err }, 'could not start the server')
  process.exit(1)
}

// One benchmark server, run in its own child process so its CPU time can be measured
// apart from the load generator:  node server.mjs <contender>
// It listens on 127.0.0.1, port 0, and reports the port to the parent over IPC.
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify from 'fastify'

const SECRET = 'benchmark-secret-benchmark-secret-0123456789'
const RACE_KEYS = 100
const contender = process.argv[2]

// The three servers differ only in the session plugin; routes are identical.
const setups = {
  async 'sessions-merge' (app) { await registerSessions(app, 'merge') },
  async 'sessions-overwrite' (app) { await registerSessions(app, 'overwrite') },
  async 'fastify-session' (app) {
    const { default: cookie } = await import('@fastify/cookie')
    const { default: session } = await import('@fastify/session')
    await app.register(cookie)
    // Its defaults otherwise (rolling: true, built-in MemoryStore); secure: false for plain http.
    await app.register(session, { secret: SECRET, saveUninitialized: false, cookie: { secure: false } })
  }
}

async function registerSessions (app, conflict) {
  // The library under test, from the build output (CommonJS: module.exports is the plugin).
  const { default: fastifySessions } = await import('../../dist/index.js')
  await app.register(fastifySessions, { secret: SECRET, store: new fastifySessions.MemoryStore(), conflict })
}

// The race routes wait 0-10 ms between loading the session (onRequest) and committing it
// (onSend), the same for every contender, so the 100 concurrent requests overlap for sure.
const raceDelay = () => sleep(Math.random() * 10)

const increment = (s) => s.set('n', (s.get('n') ?? 0) + 1)

const app = Fastify({ logger: false })
await setups[contender](app)

let served = 0
app.addHook('onResponse', (request, reply, done) => { served++; done() })

app.post('/login', async (request) => { request.session.set('n', 0); return { ok: true } })
app.get('/read', async (request) => ({ n: request.session.get('n') }))
app.post('/write', async (request) => { increment(request.session); return { ok: true } })
app.post('/race/:key', async (request) => {
  await raceDelay()
  request.session.set(request.params.key, true)
  return { ok: true }
})
app.post('/incr', async (request) => {
  await raceDelay()
  increment(request.session)
  return { ok: true }
})
app.post('/incr-update', async (request) => {
  await raceDelay()
  await request.session.update(increment)
  return { ok: true }
})
app.get('/dump', async (request) => {
  let keys = 0
  for (let i = 0; i < RACE_KEYS; i++) if (request.session.get(`k${i}`) !== undefined) keys++
  return { keys, n: request.session.get('n') ?? null }
})

// Server CPU over the measured window: user+system microseconds of this whole process.
let mark
const commands = {
  start () { served = 0; mark = process.cpuUsage(); return {} },
  stop () { const cpu = process.cpuUsage(mark); return { cpuUs: cpu.user + cpu.system, served } }
}
process.on('message', ({ id, cmd }) => process.send({ id, ...commands[cmd]() }))
// Never outlive the parent.
process.on('disconnect', () => process.exit(0))

await app.listen({ host: '127.0.0.1', port: 0 })
process.send({ ready: true, port: app.server.address().port })

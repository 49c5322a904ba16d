// The benchmark suite: fastify-sessions side by side with bare Fastify, @fastify/session
// and @fastify/secure-session, in one run.
//
//   npm run bench [-- --contenders a,b --scenarios read,write --duration 5 --rounds 3 --warmup 1]
//
// Every contender is a server in its own child process (lib/server.mjs) with identical
// routes; autocannon runs here. Each server gets 1,000 sessions up front and every request
// carries one picked at random. Within each round the contenders take short turns, again
// and again (--slices, rotating order), and each figure is the median over rounds, so bursts
// of outside load on a shared machine spread over everyone. Besides req/s and latency, each
// server reports its own CPU time over the measured window: microseconds per request is the
// figure that does not depend on how fast the load generator is.
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { createSessions, dump, fireAll, median, seed, startServer } from './lib/harness.mjs'
import { missingMemcached, startMemcached } from './lib/memcached.mjs'
import { missingPostgres, startPostgres } from './lib/postgres.mjs'
import { missingRedis, startRedis } from './lib/redis.mjs'
import { chart, markdown, targets } from './lib/report.mjs'

export const CONTENDERS = {
  bare: { label: 'bare Fastify', serverSide: false },
  'sessions-memory': { label: 'fastify-sessions MemoryStore', serverSide: true },
  'sessions-cookie': { label: 'fastify-sessions CookieStore', serverSide: false },
  'sessions-redis': { label: 'fastify-sessions RedisStore', serverSide: true, redis: true },
  'fastify-session': { label: '@fastify/session memory', serverSide: true },
  'fastify-session-redis': { label: '@fastify/session + connect-redis', serverSide: true, redis: true },
  'sessions-postgres': { label: 'fastify-sessions PostgresStore', serverSide: true, postgres: true },
  'fastify-session-pg': { label: '@fastify/session + connect-pg-simple', serverSide: true, postgres: true },
  'sessions-memcached': { label: 'fastify-sessions MemcachedStore', serverSide: true, memcached: true },
  'fastify-session-memcached': { label: '@fastify/session + connect-memcached', serverSide: true, memcached: true },
  'sessions-file': { label: 'fastify-sessions FileStore', serverSide: true },
  'fastify-session-file': { label: '@fastify/session + session-file-store', serverSide: true },
  'secure-session': { label: '@fastify/secure-session', serverSide: false },
  // Not a configuration to run, and not in the default set: see lib/server.mjs.
  'sessions-cookie-sodium': { label: 'diagnostic: CookieStore on libsodium', serverSide: false, diagnostic: true },
  // Another build's stores (--previous <dist>), for before/after figures in one run.
  'sessions-cookie-previous': { label: 'CookieStore, previous build', serverSide: false, diagnostic: true },
  'sessions-memory-previous': { label: 'MemoryStore, previous build', serverSide: true, diagnostic: true },
  'sessions-redis-previous': { label: 'RedisStore, previous build', serverSide: true, redis: true, diagnostic: true }
}

const SCENARIOS = {
  read: { method: 'GET', path: '/read', cookie: true },
  write: { method: 'POST', path: '/counter', cookie: true },
  anon: { method: 'GET', path: '/anon', cookie: false },
  // A login form posted from a fresh browser: regenerate() and set the user.
  login: { method: 'POST', path: '/login', cookie: false },
  // Browsers: each connection keeps the cookies it is sent, as a browser's jar does, and
  // goes round page, counter, page, visit. A sealed cookie changes with every write and
  // grows with the list of visits (the last 10), so the cookie a read carries is one the
  // server issued, not one it opened before. autocannon empties a connection's context
  // after the last request of its list: a browser visit is 50 rounds (200 requests), then
  // the connection starts over as another browser with another of the sessions.
  browser: { flow: Array.from({ length: 50 }, () => [['GET', '/page'], ['POST', '/counter'], ['GET', '/page'], ['POST', '/visit']]).flat() }
}

const { values: args } = parseArgs({
  options: {
    contenders: { type: 'string', default: Object.keys(CONTENDERS).filter((c) => !CONTENDERS[c].diagnostic).join(',') },
    scenarios: { type: 'string', default: Object.keys(SCENARIOS).join(',') },
    duration: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '3' },
    slices: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    connections: { type: 'string', default: '50' },
    sessions: { type: 'string', default: '1000' },
    races: { type: 'string', default: '3' },
    reuse: { type: 'boolean', default: false },
    'pg-sync': { type: 'boolean', default: false },
    previous: { type: 'string' },
    out: { type: 'string', default: new URL('./results/', import.meta.url).pathname },
    help: { type: 'boolean', default: false }
  }
})

if (args.help) {
  console.log(`npm run bench -- [options]
  --contenders  comma list of ${Object.keys(CONTENDERS).join(', ')} (bare is always added;
                sessions-cookie-sodium and the *-previous ones are diagnostics,
                run only when named)
  --previous    the dist/ directory of another build, for the *-previous contenders
  --scenarios   comma list of ${Object.keys(SCENARIOS).join(', ')}
  --duration    seconds per measured run (default 5)
  --rounds      rounds; each figure is the median over them (default 3)
  --slices      parts each run is cut into, the contenders taking turns slice by slice
                (default 5: 1-second turns)
  --warmup      seconds of warm-up per contender and scenario (default 1)
  --connections autocannon connections (default 50)
  --sessions    sessions created per server (default 1000)
  --races       repeats of the 100-writer lost-update race, 0 to skip (default 3)
  --reuse       keep the same server processes for every round (default: new ones per round)
  --pg-sync     PostgreSQL commits wait for the disk (synchronous_commit=on; default off)
  --out         directory for bench.json, bench.md and bench.svg (default benchmarks/results/)`)
  process.exit(0)
}

const list = (text, known, what) => text.split(',').map((s) => s.trim()).filter(Boolean).map((name) => {
  if (!(name in known)) throw new Error(`unknown ${what} "${name}"; known: ${Object.keys(known).join(', ')}`)
  return name
})
const number = (name) => {
  const value = Number(args[name])
  if (!Number.isFinite(value) || value < 0) throw new Error(`--${name} must be a non-negative number`)
  return value
}

const DURATION = number('duration')
const ROUNDS = Math.max(1, number('rounds'))
const SLICES = Math.max(1, Math.round(number('slices')))
const WARMUP = number('warmup')
const CONNECTIONS = number('connections')
const SESSIONS = number('sessions')
const RACES = number('races')
const RACERS = 100
let contenders = ['bare', ...list(args.contenders, CONTENDERS, 'contender').filter((c) => c !== 'bare')]
const scenarios = list(args.scenarios, SCENARIOS, 'scenario')

const log = (...line) => console.log(...line)
const fmt = (value, digits = 0) => value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })

/** Each connection's cookie jar: it starts with one of `cookies` and follows Set-Cookie. */
function browserRequests (flow, pick) {
  const cookieHeader = (context) => {
    context.jar ??= new Map([pick().split('=', 2)])
    return [...context.jar].map(([name, value]) => `${name}=${value}`).join('; ')
  }
  const follow = (status, body, context, headers) => {
    for (const line of [headers['set-cookie'] ?? headers['Set-Cookie'] ?? []].flat()) {
      const [pair] = line.split(';')
      const at = pair.indexOf('=')
      const name = pair.slice(0, at)
      if (/max-age=0/i.test(line)) context.jar.delete(name)
      else context.jar.set(name, pair.slice(at + 1))
    }
  }
  return flow.map(([method, path]) => ({
    method,
    path,
    setupRequest: (req, context) => ({ ...req, headers: { ...req.headers, cookie: cookieHeader(context) } }),
    onResponse: follow
  }))
}

/** One autocannon run; requests that need a session carry a random one of `cookies`. */
async function load (server, cookies, scenario, seconds) {
  const { method, path, cookie, flow } = SCENARIOS[scenario]
  const pick = () => cookies[Math.floor(Math.random() * cookies.length)]
  const request = cookie
    // A function makes autocannon build every request anew, so each gets its own pick.
    ? { method, path, setupRequest: (req) => ({ ...req, headers: { ...req.headers, cookie: pick() } }) }
    : { method, path }
  const requests = flow === undefined ? [request] : browserRequests(flow, pick)
  const result = await autocannon({ url: server.url, connections: CONNECTIONS, duration: seconds, requests })
  return {
    reqPerSec: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    ok: result['2xx'],
    errors: result.errors + result.timeouts + result.non2xx
  }
}

/** The sum of every session's counter: what the write runs added, read back. */
async function counterSum (server, cookies) {
  let sum = 0
  for (let i = 0; i < cookies.length; i += 25) {
    const batch = await Promise.all(cookies.slice(i, i + 25).map((cookie) => dump(server.url, cookie)))
    for (const { n } of batch) sum += n ?? 0
  }
  return sum
}

/** Increments the server acknowledged and the sum the sessions hold, once in-flight requests are done. */
async function counters (server, cookies) {
  await sleep(300)
  const { acknowledged } = await server.rpc('acknowledged')
  return { acknowledged, sum: await counterSum(server, cookies) }
}

// The database's own CPU: each query costs the PostgreSQL server time the app server's
// figure does not include. Set by startAll when a PostgreSQL contender runs.
let database

// One turn of one contender: its figures over `seconds`, as sums, so that turns add up.
async function measure (server, cookies, scenario, seconds) {
  const onDatabase = CONTENDERS[server.contender].postgres
  await server.rpc('start')
  const dbStart = onDatabase ? database.cpuUs() : 0
  const run = await load(server, cookies, scenario, seconds)
  const dbUs = onDatabase ? database.cpuUs() - dbStart : 0
  const { cpuUs, served, queries, begun } = await server.rpc('stop')
  return { ...run, served, cpuUs, dbUs, queries, begun }
}

const sum = (turns, field) => turns.reduce((total, turn) => total + turn[field], 0)

// A contender's turns in one round, as one run: rates over the whole, latencies the median
// turn's. `before` and `after` are its counters around all of them (write runs on server stores).
function combine (turns, onDatabase, before, after) {
  const served = sum(turns, 'served')
  const writes = before === undefined ? null : after.acknowledged - before.acknowledged
  return {
    reqPerSec: sum(turns, 'reqPerSec') / turns.length,
    p50: median(turns.map((turn) => turn.p50)),
    p99: median(turns.map((turn) => turn.p99)),
    ok: sum(turns, 'ok'),
    errors: sum(turns, 'errors'),
    served,
    cpuUsPerReq: sum(turns, 'cpuUs') / served,
    queriesPerReq: onDatabase ? sum(turns, 'queries') / sum(turns, 'begun') : null,
    dbUsPerReq: onDatabase ? sum(turns, 'dbUs') / served : null,
    lost: writes === null ? null : writes - (after.sum - before.sum),
    writes
  }
}

// Each contender's turns in one round, the contenders taking turns in `order`. The machine's
// speed drifts over seconds: short turns, taken in order again and again, spread that drift
// over every contender instead of handing it to one.
async function takeTurns (order, cookies, scenario) {
  const counts = (server) => scenario === 'write' && CONTENDERS[server.contender].serverSide
  const before = new Map()
  for (const server of order.filter(counts)) before.set(server, await counters(server, cookies[server.contender]))
  const turns = new Map(order.map((server) => [server, []]))
  for (let slice = 0; slice < SLICES; slice++) {
    for (const server of order) turns.get(server).push(await measure(server, cookies[server.contender], scenario, DURATION / SLICES))
  }
  const runs = new Map()
  for (const server of order) {
    const after = counts(server) ? await counters(server, cookies[server.contender]) : undefined
    runs.set(server, combine(turns.get(server), CONTENDERS[server.contender].postgres, before.get(server), after))
  }
  return runs
}

/** Starts a backing server when a chosen contender needs one, or drops those contenders. */
async function backing (flag, name, missing, start) {
  if (!contenders.some((c) => CONTENDERS[c][flag])) return undefined
  const reason = missing()
  if (reason !== undefined) {
    log(`skipping the ${name} contenders: ${reason}`)
    contenders = contenders.filter((c) => !CONTENDERS[c][flag])
    return undefined
  }
  const server = await start()
  log(`${name} on 127.0.0.1:${server.port}`)
  return server
}

async function startAll () {
  const redis = await backing('redis', 'Redis', missingRedis, startRedis)
  const postgres = await backing('postgres', 'PostgreSQL', missingPostgres, () => startPostgres({ synchronousCommit: args['pg-sync'] }))
  const memcached = await backing('memcached', 'memcached', missingMemcached, startMemcached)
  database = postgres
  const env = { REDIS_PORT: String(redis?.port ?? ''), PG_PORT: String(postgres?.port ?? ''), MEMCACHED_PORT: String(memcached?.port ?? ''), PREVIOUS_DIST: resolve(args.previous ?? 'dist') }
  const servers = []
  for (const contender of contenders) {
    servers.push(await startServer(contender, env))
    log(`started ${contender}`)
  }
  return { servers, env, backends: [redis, postgres, memcached].filter(Boolean) }
}

// One server process keeps its own speed for its whole life: two processes of the same
// build measured 3-5 µs/request apart, round after round (about 15% of a sealed-cookie
// write). So each round of a scenario runs on new processes, each with new sessions and a
// warm-up of its own, and the median over rounds is over processes too. --reuse keeps the
// first processes throughout (quicker, for profiling one server).
async function restart (servers, cookies, env, scenario) {
  for (const [i, server] of servers.entries()) {
    await server.disconnect()
    servers[i] = await startServer(server.contender, env)
    cookies[server.contender] = await createSessions(servers[i].url, SESSIONS)
  }
  await warmUp(servers, cookies, scenario)
}

async function warmUp (servers, cookies, scenario) {
  for (const server of servers) {
    log(`warm-up ${scenario} ${server.contender} (${WARMUP} s)`)
    await load(server, cookies[server.contender], scenario, WARMUP)
  }
}

// Scenarios run one after another, login last: every login leaves a new session behind,
// and a bounded store (MemoryStore keeps 100,000) would evict the 1,000 sessions that
// read and write use. Within a scenario the contenders take turns in every round.
async function rounds (servers, cookies, env) {
  const results = []
  const ordered = [...scenarios].sort((a, b) => (a === 'login') - (b === 'login'))
  for (const [index, scenario] of ordered.entries()) {
    for (let round = 0; round < ROUNDS; round++) {
      if (!args.reuse && (index > 0 || round > 0)) await restart(servers, cookies, env, scenario)
      else if (round === 0) await warmUp(servers, cookies, scenario)
      const order = servers.map((_, i) => servers[(i + round) % servers.length])
      for (const [server, run] of await takeTurns(order, cookies, scenario)) {
        results.push({ round, scenario, contender: server.contender, ...run })
        const lost = run.lost === null ? '' : `, ${run.lost} increments lost`
        const queries = run.queriesPerReq === null ? '' : `, ${fmt(run.queriesPerReq, 2)} queries/req, ${fmt(run.dbUsPerReq, 1)} µs database CPU/req`
        log(`[${scenario} ${round + 1}/${ROUNDS}] ${server.contender.padEnd(22)} ${fmt(run.reqPerSec).padStart(7)} req/s, p99 ${run.p99} ms, ${fmt(run.cpuUsPerReq, 1)} µs CPU/req${queries}${lost}`)
      }
    }
  }
  return results
}

/** 100 concurrent requests on one session, each setting its own key: how many keys survive. */
async function races (servers) {
  const out = {}
  for (const server of servers.filter((s) => CONTENDERS[s.contender].serverSide)) {
    const kept = []
    for (let i = 0; i < RACES; i++) {
      const cookie = await seed(server.url)
      const statuses = await fireAll(server.url, cookie, Array.from({ length: RACERS }, (_, k) => `/race/k${k}`))
      kept.push((await dump(server.url, cookie)).keys)
      if (statuses.some((s) => s !== 200)) log(`${server.contender}: race statuses ${[...new Set(statuses)].join(', ')}`)
    }
    out[server.contender] = { kept: median(kept), runs: kept }
    log(`race ${server.contender}: ${kept.join(', ')} of ${RACERS} keys kept`)
  }
  return out
}

/** Median figures per contender and scenario, with ratios to bare Fastify in the same round. */
function summarize (results) {
  const summary = []
  for (const scenario of scenarios) {
    for (const contender of contenders) {
      const runs = results.filter((r) => r.scenario === scenario && r.contender === contender)
      const bare = (round) => results.find((r) => r.scenario === scenario && r.contender === 'bare' && r.round === round)
      const lost = runs.every((r) => r.lost === null) ? null : runs.reduce((sum, r) => sum + r.lost, 0)
      summary.push({
        scenario,
        contender,
        label: CONTENDERS[contender].label,
        reqPerSec: median(runs.map((r) => r.reqPerSec)),
        vsBare: median(runs.map((r) => r.reqPerSec / bare(r.round).reqPerSec)),
        p50: median(runs.map((r) => r.p50)),
        p99: median(runs.map((r) => r.p99)),
        errors: runs.reduce((sum, r) => sum + r.errors, 0),
        cpuUsPerReq: median(runs.map((r) => r.cpuUsPerReq)),
        overheadUs: median(runs.map((r) => r.cpuUsPerReq - bare(r.round).cpuUsPerReq)),
        queriesPerReq: runs.every((r) => r.queriesPerReq === null) ? null : median(runs.map((r) => r.queriesPerReq)),
        dbUsPerReq: runs.every((r) => r.dbUsPerReq === null) ? null : median(runs.map((r) => r.dbUsPerReq)),
        lost,
        writes: lost === null ? null : runs.reduce((sum, r) => sum + r.writes, 0)
      })
    }
  }
  return summary
}

async function main () {
  const started = Date.now()
  const machine = `Node ${process.version}, ${cpus().length} CPUs, load average ${fmt(loadavg()[0], 2)} at start`
  log(machine)
  const { servers, env, backends } = await startAll()
  try {
    const cookies = {}
    for (const server of servers) {
      cookies[server.contender] = await createSessions(server.url, SESSIONS)
      log(`${SESSIONS} sessions on ${server.contender}`)
    }
    const results = await rounds(servers, cookies, env)
    const raced = RACES > 0 ? await races(servers) : {}
    const summary = summarize(results)
    const settings = { duration: DURATION, rounds: ROUNDS, slices: SLICES, warmup: WARMUP, connections: CONNECTIONS, sessions: SESSIONS, machine, seconds: Math.round((Date.now() - started) / 1000) }
    const checks = targets(summary, raced)
    const table = markdown(summary, raced, checks, settings, CONTENDERS)
    mkdirSync(args.out, { recursive: true })
    writeFileSync(new URL('bench.json', `file://${args.out}/`), JSON.stringify({ settings, summary, races: raced, targets: checks, runs: results }, null, 2) + '\n')
    writeFileSync(new URL('bench.md', `file://${args.out}/`), table)
    writeFileSync(new URL('bench.svg', `file://${args.out}/`), chart(summary, scenarios, contenders, CONTENDERS))
    log('\n' + table)
    log(`results written to ${args.out}`)
  } finally {
    for (const server of servers) server.stop()
    for (const backend of backends) backend.stop()
  }
}

// Everything is bounded; this is the backstop if a server hangs anyway. Besides its load,
// a measure takes up to 30 s: a new server with its sessions, reading every session's
// counter before and after a write (on a slow store, seconds each), and waiting for
// requests still under way to end.
const budget = (contenders.length * scenarios.length * ROUNDS * (DURATION + WARMUP + 30 + 2 * SLICES) + 300) * 1000
setTimeout(() => { console.error('run.mjs: ran out of time'); process.exit(1) }, budget).unref()
await main()

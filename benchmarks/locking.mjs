// What optimistic locking costs, and what it buys, in one run.
//
//   npm run build && npm install --prefix benchmarks && node benchmarks/locking.mjs
//   env: DURATION (seconds per measurement, default 4), ROUNDS (default 5)
//
// Part 1, uncontended: fastify-sessions with conflict 'merge' against 'overwrite' (and
// @fastify/session as a reference), each server in its own child process, autocannon in
// this one. 1,000 sessions per server; each request picks one at random, so two requests
// rarely touch the same session at once. On a shared 2-core machine load comes in bursts,
// so the contenders take turns within every round (rotating order) and each figure is the
// median over the rounds.
//
// Part 2, lost updates: 100 concurrent requests on ONE session, each setting its own key,
// then count the keys that survived; and 100 concurrent increments of one counter.
import { mkdirSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { cpus, loadavg } from 'node:os'
import autocannon from 'autocannon'
import { createSessions, dump, fireAll, median, seed, startServer } from './lib/harness.mjs'

const DURATION = Number(process.env.DURATION ?? 4)
const ROUNDS = Number(process.env.ROUNDS ?? 5)
const WARMUP = 2
const SESSIONS = 1000
const CONNECTIONS = 50
const RACERS = 100
const REPEATS = 5
const CONTENDERS = ['sessions-merge', 'sessions-overwrite', 'fastify-session']
const SCENARIOS = { read: { method: 'GET', path: '/read' }, write: { method: 'POST', path: '/write' } }

// Everything below is bounded; this is the backstop if a server hangs anyway.
setTimeout(() => { console.error('locking.mjs: gave up after 6 minutes'); process.exit(1) }, 360_000).unref()

const log = (...args) => console.log(...args)
const fmt = (value, digits = 0) => value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })

/** One autocannon run against `server`, each request carrying a random session cookie. */
async function load (server, cookies, scenario, seconds) {
  const { method, path } = SCENARIOS[scenario]
  const pick = () => cookies[Math.floor(Math.random() * cookies.length)]
  const result = await autocannon({
    url: server.url,
    connections: CONNECTIONS,
    duration: seconds,
    // A function here makes autocannon build every request anew, so each gets its own pick.
    requests: [{ method, path, setupRequest: (req) => ({ ...req, headers: { ...req.headers, cookie: pick() } }) }]
  })
  return {
    reqPerSec: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts + result.non2xx
  }
}

/** A measured run: autocannon numbers plus the server's CPU per request over the window. */
async function measure (server, cookies, scenario) {
  await server.rpc('start')
  const run = await load(server, cookies, scenario, DURATION)
  const { cpuUs, served } = await server.rpc('stop')
  return { ...run, served, cpuUsPerReq: cpuUs / served }
}

async function uncontended (servers) {
  const cookies = {}
  for (const server of servers) {
    log(`creating ${SESSIONS} sessions on ${server.contender}`)
    cookies[server.contender] = await createSessions(server.url, SESSIONS)
  }
  for (const scenario of Object.keys(SCENARIOS)) {
    for (const server of servers) {
      log(`warm-up ${server.contender} ${scenario} (${WARMUP} s)`)
      await load(server, cookies[server.contender], scenario, WARMUP)
    }
  }
  const rounds = []
  for (let round = 0; round < ROUNDS; round++) {
    for (const scenario of Object.keys(SCENARIOS)) {
      // Rotate who goes first so no contender always follows the same neighbour.
      const order = servers.map((_, i) => servers[(i + round) % servers.length])
      for (const server of order) {
        const run = await measure(server, cookies[server.contender], scenario)
        rounds.push({ round, scenario, contender: server.contender, ...run })
        log(`round ${round + 1}/${ROUNDS} ${scenario.padEnd(5)} ${server.contender.padEnd(18)} ` +
          `${fmt(run.reqPerSec).padStart(7)} req/s  p99 ${run.p99} ms  ${fmt(run.cpuUsPerReq, 1)} µs CPU/req  errors ${run.errors}`)
      }
    }
  }
  return rounds
}

function summarize (rounds) {
  const rows = []
  for (const scenario of Object.keys(SCENARIOS)) {
    for (const contender of CONTENDERS) {
      const runs = rounds.filter((r) => r.scenario === scenario && r.contender === contender)
      const of = (field) => median(runs.map((r) => r[field]))
      rows.push({
        scenario,
        contender,
        reqPerSec: of('reqPerSec'),
        reqPerSecMin: Math.min(...runs.map((r) => r.reqPerSec)),
        reqPerSecMax: Math.max(...runs.map((r) => r.reqPerSec)),
        p50: of('p50'),
        p99: of('p99'),
        errors: runs.reduce((sum, r) => sum + r.errors, 0),
        cpuUsPerReq: of('cpuUsPerReq')
      })
    }
  }
  const ratios = Object.keys(SCENARIOS).map((scenario) => {
    const get = (contender) => rows.find((r) => r.scenario === scenario && r.contender === contender)
    const merge = get('sessions-merge')
    const overwrite = get('sessions-overwrite')
    return {
      scenario,
      reqPerSec: merge.reqPerSec / overwrite.reqPerSec,
      cpuUsPerReq: merge.cpuUsPerReq / overwrite.cpuUsPerReq,
      // Same ratio, but per round (the two ran seconds apart), then the median of those.
      reqPerSecPaired: median(pairs(scenario, 'reqPerSec')),
      cpuUsPerReqPaired: median(pairs(scenario, 'cpuUsPerReq'))
    }
  })
  return { rows, ratios }

  function pairs (scenario, field) {
    return Array.from({ length: ROUNDS }, (_, round) => {
      const at = (contender) => rounds.find((r) => r.round === round && r.scenario === scenario && r.contender === contender)[field]
      return at('sessions-merge') / at('sessions-overwrite')
    })
  }
}

/** 100 concurrent requests on one fresh session, each setting its own key k0..k99. */
async function distinctKeys (server) {
  const cookie = await seed(server.url)
  const statuses = await fireAll(server.url, cookie, Array.from({ length: RACERS }, (_, i) => `/race/k${i}`))
  return { surviving: (await dump(server.url, cookie)).keys, failed: statuses.filter((s) => s !== 200).length }
}

/** 100 concurrent increments of one fresh session's counter n (starting at 0). */
async function counter (server, path) {
  const cookie = await seed(server.url)
  const statuses = await fireAll(server.url, cookie, Array.from({ length: RACERS }, () => path))
  return { final: (await dump(server.url, cookie)).n, failed: statuses.filter((s) => s !== 200).length }
}

async function lostUpdates (servers) {
  const byName = Object.fromEntries(servers.map((s) => [s.contender, s]))
  const cases = [
    ...CONTENDERS.map((contender) => ({ race: 'distinct keys', contender, how: 'set(own key)', run: () => distinctKeys(byName[contender]), field: 'surviving' })),
    { race: 'counter', contender: 'sessions-merge', how: 'update(fn)', run: () => counter(byName['sessions-merge'], '/incr-update'), field: 'final' },
    { race: 'counter', contender: 'sessions-merge', how: 'get/set', run: () => counter(byName['sessions-merge'], '/incr'), field: 'final' },
    { race: 'counter', contender: 'fastify-session', how: 'get/set', run: () => counter(byName['fastify-session'], '/incr'), field: 'final' }
  ]
  const results = []
  for (const { run, field, ...rest } of cases) {
    const repeats = []
    for (let i = 0; i < REPEATS; i++) repeats.push(await run())
    const values = repeats.map((r) => r[field])
    const row = { ...rest, of: RACERS, min: Math.min(...values), median: median(values), max: Math.max(...values), failedRequests: repeats.reduce((s, r) => s + r.failed, 0), values }
    results.push(row)
    log(`${row.race.padEnd(13)} ${row.contender.padEnd(18)} ${row.how.padEnd(12)} ${values.join(', ')} of ${RACERS}`)
  }
  return results
}

function markdown (part1, part2) {
  const lines = [
    '| scenario | contender | req/s (median) | req/s (min–max) | p50 ms | p99 ms | errors | server CPU µs/req |',
    '|---|---|---:|---:|---:|---:|---:|---:|',
    ...part1.rows.map((r) => `| ${r.scenario} | ${r.contender} | ${fmt(r.reqPerSec)} | ${fmt(r.reqPerSecMin)}–${fmt(r.reqPerSecMax)} | ${r.p50} | ${r.p99} | ${r.errors} | ${fmt(r.cpuUsPerReq, 1)} |`),
    '',
    '| scenario | merge/overwrite req/s | merge/overwrite CPU/req | per-round median req/s | per-round median CPU/req |',
    '|---|---:|---:|---:|---:|',
    ...part1.ratios.map((r) => `| ${r.scenario} | ${fmt(r.reqPerSec, 3)} | ${fmt(r.cpuUsPerReq, 3)} | ${fmt(r.reqPerSecPaired, 3)} | ${fmt(r.cpuUsPerReqPaired, 3)} |`),
    '',
    `| race (${RACERS} concurrent requests, ${REPEATS} repeats) | contender | how | min | median | max | failed requests |`,
    '|---|---|---|---:|---:|---:|---:|',
    ...part2.map((r) => `| ${r.race} | ${r.contender} | \`${r.how}\` | ${r.min} | ${r.median} | ${r.max} | ${r.failedRequests} |`)
  ]
  return lines.join('\n')
}

function version (name) {
  try { return createRequire(import.meta.url)(`${name}/package.json`).version } catch { return null }
}

const started = Date.now()
const machine = { cpus: cpus().length, model: cpus()[0]?.model, node: process.version, loadavgBefore: loadavg() }
log(`locking benchmark: ${machine.cpus} CPUs, node ${machine.node}, load ${machine.loadavgBefore.map((l) => l.toFixed(2)).join(' ')}`)
const servers = []
try {
  for (const contender of CONTENDERS) servers.push(await startServer(contender))
  const part1 = summarize(await uncontended(servers))
  const part2 = await lostUpdates(servers)
  machine.loadavgAfter = loadavg()
  const table = markdown(part1, part2)
  log(`\n${table}\n`)
  const output = {
    date: new Date().toISOString(),
    seconds: (Date.now() - started) / 1000,
    machine,
    versions: { fastify: version('fastify'), '@fastify/session': version('@fastify/session'), autocannon: version('autocannon') },
    config: { duration: DURATION, warmup: WARMUP, rounds: ROUNDS, sessions: SESSIONS, connections: CONNECTIONS, racers: RACERS, repeats: REPEATS, raceDelayMs: [0, 10] },
    uncontended: part1,
    lostUpdates: part2,
    markdown: table
  }
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true })
  writeFileSync(new URL('./results/locking.json', import.meta.url), JSON.stringify(output, null, 2) + '\n')
  log(`wrote benchmarks/results/locking.json (${fmt(output.seconds)} s)`)
} finally {
  for (const server of servers) server.stop()
}

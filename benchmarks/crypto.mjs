// Seal+unseal throughput and main-thread cost: inline ('never') against the piscina
// pool ('always') and 'auto', at 4 payload sizes and 2 concurrency levels, in one run.
//
//   npm run build && node benchmarks/crypto.mjs
//   env: THREADS (pool threads, default 1), SLICE_MS (default 60), ROUNDS (default 21)
//
// Main-thread cost comes from performance.eventLoopUtilization(): the wall time the
// main event loop spent outside its idle wait during a sample, divided by the jobs done.
// process.cpuUsage() cannot be used: it sums every thread of the process, so work
// moved onto a worker thread would still be counted. ELU is wall time, so a busy
// machine inflates it a little. On a shared 2-core machine load comes in bursts, so
// the modes take turns in short slices (rotating order) for many rounds and each
// figure is the median over the rounds: every mode sees the same bursts.
import { mkdirSync, writeFileSync } from 'node:fs'
import { availableParallelism, loadavg } from 'node:os'
import { performance } from 'node:perf_hooks'
import sealerModule from '../dist/crypto/sealer.js'

const { Sealer, AUTO_MIN_BYTES } = sealerModule
const THREADS = Number(process.env.THREADS ?? 1)
const SLICE_MS = Number(process.env.SLICE_MS ?? 60)
const ROUNDS = Number(process.env.ROUNDS ?? 21)
const SIZES = [200, 4096, 65536, 1048576]
const CONCURRENCY = [1, 64]
const MODES = { inline: 'never', pool: 'always', auto: 'auto' }
const CONTEXT = 'sid'
const SECRET = 'benchmark-secret-benchmark-secret-0123456789'

/** A JSON string of exactly `bytes` bytes shaped like a session record. */
function payload (bytes) {
  const head = JSON.stringify({ id: 'x'.repeat(43), createdAt: Date.now(), data: { blob: '' } })
  return head.replace('"blob":""', `"blob":"${'a'.repeat(bytes - head.length)}"`)
}

async function roundTrip (sealer, text) {
  const opened = await sealer.unseal(CONTEXT, await sealer.seal(CONTEXT, text))
  if (!opened.ok) throw new Error(`round trip failed: ${opened.reason}`)
}

/** Runs `concurrency` loops of seal+unseal for `ms`; returns ops/s and main-thread µs per op. */
async function sample (sealer, text, concurrency, ms) {
  let ops = 0
  const deadline = performance.now() + ms
  const loop = async () => {
    do { await roundTrip(sealer, text); ops++ } while (performance.now() < deadline)
  }
  const elu = performance.eventLoopUtilization()
  const start = performance.now()
  await Promise.all(Array.from({ length: concurrency }, loop))
  const elapsed = performance.now() - start
  const busy = performance.eventLoopUtilization(elu).active
  return { opsPerSec: ops / elapsed * 1000, mainUsPerOp: busy * 1000 / ops }
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

function points () {
  return SIZES.flatMap((size) => CONCURRENCY.map((concurrency) => ({ size, concurrency, text: payload(size) })))
}

async function measurePoint (sealers, { size, concurrency, text }) {
  const names = Object.keys(MODES)
  const rounds = []
  for (const name of names) await sample(sealers[name], text, concurrency, SLICE_MS)
  for (let round = 0; round < ROUNDS; round++) {
    const results = {}
    for (let i = 0; i < names.length; i++) {
      const name = names[(i + round) % names.length]
      results[name] = await sample(sealers[name], text, concurrency, SLICE_MS)
    }
    rounds.push(results)
  }
  const row = { size, concurrency }
  for (const name of names) {
    row[name] = {
      opsPerSec: median(rounds.map((r) => r[name].opsPerSec)),
      mainUsPerOp: median(rounds.map((r) => r[name].mainUsPerOp))
    }
  }
  // Compared round by round, so a burst of outside load hits both sides of the ratio.
  row.autoVsBest = median(rounds.map((r) => r.auto.opsPerSec / Math.max(r.inline.opsPerSec, r.pool.opsPerSec)))
  return row
}

async function measure (sealers) {
  const rows = []
  for (const point of points()) {
    rows.push(await measurePoint(sealers, point))
    process.stderr.write(`${label(point.size)} x ${point.concurrency} done\n`)
  }
  return rows
}

const fmt = (n) => n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(1)
const label = (size) => size >= 1048576 ? `${size / 1048576} MB` : size >= 1024 ? `${size / 1024} KB` : `${size} B`

function table (rows) {
  const lines = [
    '| payload | concurrency | inline ops/s | pool ops/s | auto ops/s | auto / best | inline main µs/op | pool main µs/op | auto main µs/op |',
    '|---|---|---|---|---|---|---|---|---|'
  ]
  for (const r of rows) {
    lines.push(`| ${label(r.size)} | ${r.concurrency} | ${fmt(r.inline.opsPerSec)} | ${fmt(r.pool.opsPerSec)} | ` +
      `${fmt(r.auto.opsPerSec)} | ${(r.autoVsBest * 100).toFixed(0)}% | ${fmt(r.inline.mainUsPerOp)} | ` +
      `${fmt(r.pool.mainUsPerOp)} | ${fmt(r.auto.mainUsPerOp)} |`)
  }
  return lines.join('\n')
}

async function main () {
  const started = performance.now()
  const load = loadavg()[0]
  const sealers = Object.fromEntries(Object.entries(MODES).map(([name, offload]) =>
    [name, new Sealer({ secret: SECRET, offload, threads: THREADS })]))
  // Thread start-up is a one-off cost, not part of the steady state measured here.
  await sealers.pool.seal(CONTEXT, 'warm up')
  await sealers.auto.pool.seal(CONTEXT, 'warm up')
  try {
    const rows = await measure(sealers)
    const seconds = (performance.now() - started) / 1000
    const env = { node: process.version, cpus: availableParallelism(), loadAverageAtStart: load, threads: THREADS, sliceMs: SLICE_MS, rounds: ROUNDS, autoMinBytes: AUTO_MIN_BYTES, seconds }
    console.log(`Node ${env.node}, ${env.cpus} CPUs, load average ${load.toFixed(2)} at start, pool threads ${THREADS}, ` +
      `median of ${ROUNDS} interleaved rounds of ${SLICE_MS} ms slices, ${seconds.toFixed(0)} s in all\n`)
    console.log(table(rows))
    const worst = Math.min(...rows.map((r) => r.autoVsBest))
    console.log(`\nauto within 10% of the better of inline and pool at every point: ${worst >= 0.9 ? 'yes' : 'NO'} (worst ${(worst * 100).toFixed(0)}%)`)
    mkdirSync(new URL('./results/', import.meta.url), { recursive: true })
    writeFileSync(new URL('./results/crypto.json', import.meta.url), JSON.stringify({ env, rows }, null, 2) + '\n')
  } finally {
    await Promise.all(Object.values(sealers).map((sealer) => sealer.destroy()))
  }
}

await main()

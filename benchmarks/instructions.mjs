// Instructions per request of one build against another, counted by callgrind: a figure
// that barely moves with the load of a shared machine, for A/B checks of small changes
// to the core (the HTTP suite, run.mjs, stays the measure that counts).
//
//   node benchmarks/instructions.mjs --builds dist,../old/dist [--stores memory,cookie]
//     [--scenarios read,counter,anon,login] [--requests 2000] [--node-flags=--predictable] [--together]
//
// Each build runs every scenario twice in a child under valgrind: once with 2,000 warm-up
// requests (JIT, caches), once with that plus --requests more; the difference divided by
// --requests is the cost of one request, startup excluded. It includes fastify.inject and
// Fastify themselves, so compare differences between builds, not the figures to run.mjs.
// Two children run at once; a pair takes about a minute. --node-flags go to each child's node.
// --node-flags=--predictable makes V8 as deterministic as it can (no memory reducer, which
// collects by the wall clock, nothing in background threads); timers still run by the clock,
// and two runs of one build can differ by a quarter when the machine's load changes between
// them (measured here: 613,136 and 800,517 for memory/read): run a build against itself to
// see the spread. --together runs every build's pair of a row at once, so that the builds
// compared share the machine's load. Add --import ./benchmarks/lib/trace-subscriber.mjs to
// the flags to measure with tracing subscribed.
import { execFile } from 'node:child_process'
import { resolve } from 'node:path'
import { promisify } from 'node:util'
import { parseArgs } from 'node:util'

const run = promisify(execFile)
const WARMUP = 2000
const { values: args } = parseArgs({
  options: {
    builds: { type: 'string', default: 'dist' },
    stores: { type: 'string', default: 'memory,cookie' },
    scenarios: { type: 'string', default: 'read,counter,anon,login' },
    requests: { type: 'string', default: '2000' },
    'node-flags': { type: 'string', default: '' },
    together: { type: 'boolean', default: false }
  }
})
const loop = new URL('./lib/inject-loop.mjs', import.meta.url).pathname
const nodeFlags = args['node-flags'].split(' ').filter((flag) => flag !== '')

async function instructions (dist, store, scenario, requests) {
  const { stderr } = await run('valgrind', ['--tool=callgrind', '--callgrind-out-file=/dev/null',
    process.execPath, '--single-threaded', ...nodeFlags, loop, dist, store, scenario, String(requests)], { maxBuffer: 1 << 24 })
  const collected = /Collected : (\d+)/.exec(stderr)
  if (collected === null) throw new Error(`no callgrind total for ${dist} ${store} ${scenario}:\n${stderr}`)
  return Number(collected[1])
}

async function perRequest (dist, store, scenario) {
  const requests = Number(args.requests)
  const [base, more] = await Promise.all([
    instructions(dist, store, scenario, WARMUP),
    instructions(dist, store, scenario, WARMUP + requests)
  ])
  return Math.round((more - base) / requests)
}

const builds = args.builds.split(',').map((dir) => resolve(dir))
console.log(`| store | scenario | ${builds.join(' | ')} |`)
console.log(`|---|---|${builds.map(() => '--:').join('|')}|`)
for (const store of args.stores.split(',')) {
  for (const scenario of args.scenarios.split(',')) {
    const counts = []
    if (args.together) counts.push(...await Promise.all(builds.map((dist) => perRequest(dist, store, scenario))))
    else for (const dist of builds) counts.push(await perRequest(dist, store, scenario))
    console.log(`| ${store} | ${scenario} | ${counts.map((n) => n.toLocaleString('en')).join(' | ')} |`)
  }
}

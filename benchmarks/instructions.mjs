// Instructions per request of one build against another, counted by callgrind: a figure
// that does not move with the load of a shared machine, for A/B checks of small changes
// to the core (the HTTP suite, run.mjs, stays the measure that counts).
//
//   node benchmarks/instructions.mjs --builds dist,../old/dist [--stores memory,cookie]
//     [--scenarios read,counter,anon,login,browser] [--requests 2000] [--node-flags=...] [--together]
//
// Each build runs every scenario twice in a child under valgrind: once with 2,000 warm-up
// requests (JIT, caches), once with that plus --requests more; the difference divided by
// --requests is the cost of one request, startup excluded. It includes fastify.inject and
// Fastify themselves, so compare differences between builds, not the figures to run.mjs.
// Two children run at once; a pair takes about a minute. --together runs every build's pair
// of a row at once.
//
// --node-flags go to each child's node; the default, --predictable, is what makes the count
// repeatable: it keeps V8 from deciding by the wall clock when and how to collect garbage
// (valgrind slows a child down by however busy the machine is, so those decisions, and the
// instructions they cost, changed from run to run). One build's cookie/browser request,
// measured twice at once with it: 409,818 and 409,817 instructions; without it, in two runs
// the same hour: 377,182 and 621,339. Add
// --import ./benchmarks/lib/trace-subscriber.mjs to the flags to measure with tracing
// subscribed.
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
    'node-flags': { type: 'string', default: '--predictable' },
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

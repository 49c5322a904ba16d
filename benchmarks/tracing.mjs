// What a tracing hook point costs while nobody subscribes, in instructions counted by
// callgrind: the `hasSubscribers` check each hook point makes before any tracing work.
//
//   node benchmarks/tracing.mjs [--calls 1000000]
//
// A child under valgrind calls a small function --calls times and twice that, once plainly
// and once behind the check, as src/ does it; the difference of differences divided by
// --calls is the check's cost. A request makes one to six of them (a load, its store calls,
// a commit); instructions.mjs gives the whole request's count to set it against.
import { execFile } from 'node:child_process'
import { tracingChannel } from 'node:diagnostics_channel'
import { fileURLToPath } from 'node:url'
import { parseArgs, promisify } from 'node:util'

const run = promisify(execFile)
const self = fileURLToPath(import.meta.url)

if (process.argv[2] === '--child') {
  const [, , , mode, count] = process.argv
  const channel = tracingChannel('fastify-sessions:store')
  let sum = 0
  const work = (i) => { sum += i & 7 }
  const plain = (n) => { for (let i = 0; i < n; i++) work(i) }
  const guarded = (n) => {
    for (let i = 0; i < n; i++) {
      if (!channel.hasSubscribers) work(i)
    }
  }
  // Optimised first, as a hook point on a server's hot path is.
  const loop = mode === 'guarded' ? guarded : plain
  for (let round = 0; round < 100; round++) loop(10_000)
  loop(Number(count))
  if (sum < 0) console.log(sum)
} else {
  const { values: args } = parseArgs({ options: { calls: { type: 'string', default: '1000000' } } })
  const calls = Number(args.calls)
  const instructions = async (mode, count) => {
    const { stderr } = await run('valgrind', ['--tool=callgrind', '--callgrind-out-file=/dev/null',
      process.execPath, '--single-threaded', '--predictable', self, '--child', mode, String(count)])
    return Number(/Collected : (\d+)/.exec(stderr)[1])
  }
  const perCall = async (mode) => {
    const [once, twice] = await Promise.all([instructions(mode, calls), instructions(mode, 2 * calls)])
    return (twice - once) / calls
  }
  const plain = await perCall('plain')
  const guarded = await perCall('guarded')
  console.log(`| call | instructions per call |\n|---|--:|\n| plain | ${plain.toFixed(1)} |\n| behind hasSubscribers | ${guarded.toFixed(1)} |\n| the check | ${(guarded - plain).toFixed(1)} |`)
}

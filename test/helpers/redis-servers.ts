// Real redis-server processes on free loopback ports, for the RedisStore tests.
// Never touches the system Redis on 6379: every port is picked above 20000.
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { rmSync } from 'node:fs'
import { Redis } from 'ioredis'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort } from './free-port'

const HOST = '127.0.0.1'
const READY_TIMEOUT_MS = 15_000
const live = new Set<ChildProcess>()
const dirs = new Set<string>()

let closing = false

// A failed, interrupted or timed-out test run must not leave servers behind,
// nor start new ones after the signal.
function killAll (): void {
  closing = true
  for (const child of live) child.kill('SIGKILL')
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
}
process.on('exit', killAll)
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    killAll()
    // Raised again now that this listener is gone, so the default handling still happens.
    process.kill(process.pid, signal)
  })
}

/** Why the Redis tests cannot run here, or undefined when they can. */
export function missingRedis (): string | undefined {
  for (const binary of ['redis-server', 'redis-cli']) {
    if (spawnSync(binary, ['--version']).error !== undefined) return `${binary} is not installed (not on PATH)`
  }
  return undefined
}

/**
 * True when the file must not run its Redis tests: skipped with the reason printed,
 * except under CI=true, where a missing server is a failure.
 */
export function redisUnavailable (t: tap.Test): boolean {
  const reason = missingRedis()
  if (reason === undefined) return false
  if (process.env.CI === 'true') throw new Error(`Redis tests cannot run under CI=true: ${reason}`)
  t.comment(`skipping the Redis tests: ${reason}`)
  t.plan(0, reason)
  return true
}

/** Runs redis-cli against a port and resolves its trimmed output. */
export function cli (port: number, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('redis-cli', ['-h', HOST, '-p', String(port), ...args], { timeout: 10_000 }, (err, stdout) => {
      if (err !== null) reject(err)
      else resolve(stdout.trim())
    })
  })
}

export async function waitFor (what: string, check: () => Promise<boolean>, timeoutMs = READY_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return
    await sleep(50)
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
}

export interface RedisProcess {
  port: number
  readonly pid: number
  /** Ends the process (SIGKILL for a crash, SIGTERM for a clean stop) and waits for it. */
  kill (signal?: NodeJS.Signals): Promise<void>
  /** Starts the same server again on the same port. */
  restart (): Promise<void>
}

function exited (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => child.once('exit', () => resolve()))
}

async function launch (port: number, args: string[]): Promise<ChildProcess> {
  if (closing) throw new Error('the test process is shutting down')
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] })
  live.add(child)
  child.once('exit', () => live.delete(child))
  let output = ''
  child.stdout?.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr?.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const up = waitFor(`redis-server on port ${port}`, async () => (await cli(port, 'ping')) === 'PONG')
  const died = exited(child).then(() => { throw new Error(`redis-server on port ${port} exited:\n${output}`) })
  await Promise.race([up, died])
  return child
}

async function startProcess (port: number, args: string[]): Promise<RedisProcess> {
  let child = await launch(port, args)
  return {
    port,
    get pid () { return child.pid as number },
    async kill (signal = 'SIGTERM') {
      child.kill(signal)
      await exited(child)
    },
    async restart () {
      child = await launch(port, args)
    }
  }
}

async function tempDir (): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'fastify-sessions-redis-'))
  dirs.add(dir)
  return dir
}

function serverArgs (port: number, dir: string, extra: string[] = []): string[] {
  return ['--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--dir', dir, ...extra]
}

async function stopAll (processes: RedisProcess[], dir: string): Promise<void> {
  await Promise.all(processes.map((p) => p.kill('SIGKILL')))
  await rm(dir, { recursive: true, force: true })
  dirs.delete(dir)
}

export interface Standalone {
  port: number
  server: RedisProcess
  stop (): Promise<void>
}

export async function startStandalone (): Promise<Standalone> {
  const dir = await tempDir()
  const port = await freePort()
  const server = await startProcess(port, serverArgs(port, dir))
  return { port, server, stop: () => stopAll([server], dir) }
}

/**
 * A standalone redis-server of the test's own and a client on it, both stopped when the test
 * ends; undefined (the test skipped, or failed under CI) when there is no redis-server.
 */
export async function redisForTest (t: tap.Test): Promise<Redis | undefined> {
  if (redisUnavailable(t)) return undefined
  const redis = await startStandalone()
  t.teardown(() => redis.stop())
  const client = new Redis({ host: '127.0.0.1', port: redis.port })
  t.teardown(() => client.disconnect())
  return client
}

export interface SentinelSetup {
  name: string
  sentinelPort: number
  master: RedisProcess
  replica: RedisProcess
  /** Port of the server Sentinel currently names as master. */
  currentMaster (): Promise<number>
  stop (): Promise<void>
}

function sentinelConfig (port: number, dir: string, name: string, masterPort: number): string {
  return [
    `port ${port}`, `bind ${HOST}`, `dir ${dir}`,
    `sentinel monitor ${name} ${HOST} ${masterPort} 1`,
    `sentinel down-after-milliseconds ${name} 1000`,
    `sentinel failover-timeout ${name} 3000`,
    `sentinel parallel-syncs ${name} 1`, ''
  ].join('\n')
}

/** A master, one replica and one Sentinel (quorum 1) that can fail over in seconds. */
export async function startSentinel (name = 'sessions'): Promise<SentinelSetup> {
  const dir = await tempDir()
  const [masterPort, replicaPort, sentinelPort] = [await freePort(), await freePort(), await freePort()]
  // A master waits repl-diskless-sync-delay (5 s by default) for more replicas before the
  // first sync; there is only one.
  const master = await startProcess(masterPort, serverArgs(masterPort, dir, ['--dbfilename', 'master.rdb', '--repl-diskless-sync-delay', '0']))
  const replica = await startProcess(replicaPort, serverArgs(replicaPort, dir, ['--dbfilename', 'replica.rdb', '--replicaof', HOST, String(masterPort)]))
  const conf = join(dir, 'sentinel.conf')
  await writeFile(conf, sentinelConfig(sentinelPort, dir, name, masterPort))
  const sentinel = await startProcess(sentinelPort, [conf, '--sentinel'])
  // Sentinel demotes the old master only after it has reported the wrong role for four
  // publish periods (8 s by default) and polls INFO every 10 s: shorter periods let a
  // failover finish in about a second.
  await cli(sentinelPort, 'sentinel', 'debug', 'info-period', '500', 'publish-period', '250')
  await waitFor('the replica to sync', async () => (await cli(replicaPort, 'info', 'replication')).includes('master_link_status:up'))
  // A forced failover needs a replica that Sentinel already knows and trusts.
  await waitFor('Sentinel to discover the replica', async () => {
    const replicas = await cli(sentinelPort, 'sentinel', 'replicas', name)
    return replicas.includes(String(replicaPort)) && !/s_down|disconnected/.test(replicas)
  })
  const currentMaster = async (): Promise<number> => {
    const [, port] = (await cli(sentinelPort, 'sentinel', 'get-master-addr-by-name', name)).split('\n')
    return Number(port)
  }
  return { name, sentinelPort, master, replica, currentMaster, stop: () => stopAll([sentinel, replica, master], dir) }
}

export interface ClusterSetup {
  nodes: Array<{ host: string, port: number }>
  stop (): Promise<void>
}

/** Three masters sharing the 16384 slots. */
export async function startCluster (): Promise<ClusterSetup> {
  const dir = await tempDir()
  const ports = [await freePort(), await freePort(), await freePort()]
  const servers = await Promise.all(ports.map((port) => startProcess(port, serverArgs(port, dir, [
    '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`,
    '--cluster-node-timeout', '2000', '--dbfilename', `dump-${port}.rdb`
  ]))))
  await cli(ports[0], '--cluster', 'create', ...ports.map((p) => `${HOST}:${p}`), '--cluster-yes')
  for (const port of ports) {
    await waitFor(`cluster_state:ok on ${port}`, async () => (await cli(port, 'cluster', 'info')).includes('cluster_state:ok'))
  }
  return { nodes: ports.map((port) => ({ host: HOST, port })), stop: () => stopAll(servers, dir) }
}

// A private PostgreSQL cluster on a free loopback port, for the PostgresStore tests.
// Never the machine's own server on 5432: the data directory and the port are the test's.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Client, Pool, type PoolConfig } from 'pg'
import { freePort } from './free-port'

const HOST = '127.0.0.1'
const READY_TIMEOUT_MS = 30_000
const live = new Set<ChildProcess>()
const dirs = new Set<string>()

// A failed or interrupted run must leave no server and no data directory behind.
function killAll (): void {
  for (const child of live) child.kill('SIGKILL')
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
}
process.on('exit', killAll)
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    killAll()
    process.kill(process.pid, signal)
  })
}

/** The directory holding initdb and postgres: on the PATH, or Debian's newest version. */
function binDir (): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir !== '' && existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'postgres'))) return dir
  }
  const debian = '/usr/lib/postgresql'
  const versions = existsSync(debian) ? readdirSync(debian).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a)) : []
  return versions.map((v) => join(debian, v, 'bin')).find((dir) => existsSync(join(dir, 'initdb')))
}

/** PostgreSQL refuses to run as root: as root the server runs as the `postgres` user. */
function serverUser (): { uid: number, gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('postgres:'))
  if (line === undefined) throw new Error('running as root, but there is no postgres user to run the server as')
  const [, , uid, gid] = line.split(':')
  return { uid: Number(uid), gid: Number(gid) }
}

/** Why the PostgreSQL tests cannot run here, or undefined when they can. */
export function missingPostgres (): string | undefined {
  return binDir() === undefined ? 'initdb and postgres are not installed (not on PATH nor in /usr/lib/postgresql/*/bin)' : undefined
}

/** True when the file must skip its PostgreSQL tests; under CI=true a missing server fails. */
export function postgresUnavailable (t: tap.Test): boolean {
  const reason = missingPostgres()
  if (reason === undefined) return false
  if (process.env.CI === 'true') throw new Error(`PostgreSQL tests cannot run under CI=true: ${reason}`)
  t.comment(`skipping the PostgreSQL tests: ${reason}`)
  t.plan(0, reason)
  return true
}

function ownedTempDir (): string {
  const dir = mkdtempSync(join(tmpdir(), 'fastify-sessions-pg-'))
  dirs.add(dir)
  const user = serverUser()
  if (user !== undefined) chownSync(dir, user.uid, user.gid)
  return dir
}

function run (command: string, args: string[]): void {
  const done = spawnSync(command, args, { ...serverUser(), encoding: 'utf8' })
  if (done.status !== 0) throw new Error(`${command} failed: ${done.error?.message ?? ''}${done.stderr}`)
}

// initdb once per test process; each server copies that template, which is faster.
let template: string | undefined
function templateDir (): string {
  if (template !== undefined) return template
  const dir = join(ownedTempDir(), 'data')
  run(join(binDir() as string, 'initdb'), ['-D', dir, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--no-sync'])
  template = dir
  return dir
}

export async function waitFor (what: string, check: () => Promise<boolean>, timeoutMs = READY_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return
    await sleep(50)
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
}

/** The server's processes: the postmaster, then the backends and workers it forked. */
function processTree (pid: number): number[] {
  const children = readdirSync('/proc').filter((entry) => /^\d+$/.test(entry)).map(Number).filter((child) => {
    try {
      // "pid (command) state ppid …"; the command may hold spaces and parentheses.
      const stat = readFileSync(`/proc/${child}/stat`, 'utf8')
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid
    } catch {
      return false // gone meanwhile
    }
  })
  return [pid, ...children]
}

export interface PostgresServer {
  port: number
  readonly pid: number
  /** A pool on the server's database; ended by stop(). */
  pool (config?: PoolConfig): Pool
  /** Ends the server: SIGQUIT is a crash (no checkpoint), SIGINT a clean fast shutdown. */
  kill (signal?: NodeJS.Signals): Promise<void>
  /**
   * SIGSTOP to the postmaster and every backend: connections stay open and calls hang, as
   * behind a network partition. `thaw()` sends SIGCONT.
   */
  freeze (): Promise<void>
  thaw (): Promise<void>
  /** Starts the same server again on the same port and data. */
  restart (): Promise<void>
  stop (): Promise<void>
}

function exited (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => child.once('exit', () => resolve()))
}

async function accepts (port: number): Promise<boolean> {
  const client = new Client({ host: HOST, port, user: 'postgres', database: 'postgres' })
  client.on('error', () => {})
  try {
    await client.connect()
    await client.query('SELECT 1')
    return true
  } finally {
    await client.end().catch(() => {})
  }
}

async function launch (dir: string, port: number): Promise<ChildProcess> {
  const args = [
    '-D', dir, '-p', String(port), '-k', dir, '-c', `listen_addresses=${HOST}`,
    // Test data need not survive a power cut.
    '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'max_connections=200'
  ]
  const child = spawn(join(binDir() as string, 'postgres'), args, { ...serverUser(), stdio: ['ignore', 'pipe', 'pipe'] })
  live.add(child)
  child.once('exit', () => live.delete(child))
  let output = ''
  child.stdout?.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr?.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const up = waitFor(`postgres on port ${port}`, () => accepts(port))
  const died = exited(child).then(() => { throw new Error(`postgres on port ${port} exited:\n${output}`) })
  await Promise.race([up, died])
  return child
}

/** Starts a server of its own; `stop()` kills it by pid and removes its data. */
export async function startPostgres (): Promise<PostgresServer> {
  const root = ownedTempDir()
  const dir = join(root, 'data')
  const source = templateDir()
  run('cp', ['-a', source, dir])
  const port = await freePort()
  let child = await launch(dir, port)
  const pools: Pool[] = []
  const kill = async (signal: NodeJS.Signals = 'SIGQUIT'): Promise<void> => {
    child.kill(signal)
    await exited(child)
  }
  return {
    port,
    get pid () { return child.pid as number },
    pool (config = {}) {
      const pool = new Pool({ host: HOST, port, user: 'postgres', database: 'postgres', max: 20, ...config })
      // A server that goes away errors the idle connections; the pool replaces them.
      pool.on('error', () => {})
      pools.push(pool)
      return pool
    },
    kill,
    // The postmaster first, so that it forks nothing the loop below would miss.
    async freeze () { for (const pid of processTree(child.pid as number)) process.kill(pid, 'SIGSTOP') },
    async thaw () { for (const pid of processTree(child.pid as number).reverse()) process.kill(pid, 'SIGCONT') },
    async restart () { child = await launch(dir, port) },
    async stop () {
      await Promise.all(pools.map((pool) => pool.end().catch(() => {})))
      await kill('SIGQUIT')
      rmSync(root, { recursive: true, force: true })
      dirs.delete(root)
    }
  }
}

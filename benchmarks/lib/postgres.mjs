// A throwaway PostgreSQL cluster for the PostgreSQL contenders: loopback, a free port, a
// data directory of its own that stop() removes. Commits do not wait for the WAL to reach
// the disk (synchronous_commit=off): with it on, every write on both contenders waits for
// this machine's disk, and the figures compare disks, not libraries. --pg-sync turns it on.
import { spawn, spawnSync } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import { freePort } from './redis.mjs'

/** The directory holding initdb and postgres: on the PATH, or Debian's newest version. */
function binDir () {
  const onPath = (process.env.PATH ?? '').split(':').find((dir) => dir !== '' && existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'postgres')))
  if (onPath !== undefined) return onPath
  const debian = '/usr/lib/postgresql'
  if (!existsSync(debian)) return undefined
  const newest = readdirSync(debian).filter((v) => /^\d+$/.test(v)).sort((a, b) => b - a)[0]
  return newest === undefined ? undefined : join(debian, newest, 'bin')
}

/** PostgreSQL refuses to run as root; as root the server runs as the `postgres` user. */
function serverUser () {
  if (process.getuid?.() !== 0) return {}
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('postgres:'))
  if (line === undefined) throw new Error('running as root, but there is no postgres user to run the server as')
  const [, , uid, gid] = line.split(':')
  return { uid: Number(uid), gid: Number(gid) }
}

/** Why the PostgreSQL contenders cannot run here, or undefined when they can. */
export function missingPostgres () {
  return binDir() === undefined ? 'initdb and postgres are not installed (apt-get install postgresql)' : undefined
}

async function accepts (port) {
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' })
  client.on('error', () => {})
  try {
    await client.connect()
    return true
  } catch {
    return false
  } finally {
    await client.end().catch(() => {})
  }
}

const TICK_US = 1e6 / 100 // Linux reports process CPU time in clock ticks of 10 ms

/**
 * CPU time (user + system, µs) of the server process `pid` and its backends, from /proc.
 * A backend or autovacuum worker that exits takes its own figures with it, but the server
 * reaps it, and a reaped child's time moves to the parent's children fields: counting those
 * too keeps the sum from dropping (it once came out negative) when a worker ends mid-window.
 */
function treeCpuUs (pid) {
  let ticks = 0
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    let stat
    try { stat = readFileSync(`/proc/${entry}/stat`, 'utf8') } catch { continue } // gone meanwhile
    // The command name may hold spaces; the fields after its closing parenthesis do not.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    if (Number(entry) === pid) ticks += Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])
    else if (Number(fields[1]) === pid) ticks += Number(fields[11]) + Number(fields[12])
  }
  return ticks * TICK_US
}

/** Starts a private cluster; resolves with { port, stop, cpuUs() }. */
export async function startPostgres ({ synchronousCommit = false } = {}) {
  const bin = binDir()
  const user = serverUser()
  const root = mkdtempSync(join(tmpdir(), 'bench-pg-'))
  if (user.uid !== undefined) chownSync(root, user.uid, user.gid)
  const dir = join(root, 'data')
  const init = spawnSync(join(bin, 'initdb'), ['-D', dir, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C'], { ...user, encoding: 'utf8' })
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr}`)
  const port = await freePort()
  const child = spawn(join(bin, 'postgres'), ['-D', dir, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200', '-c', `synchronous_commit=${synchronousCommit ? 'on' : 'off'}`], { ...user, stdio: 'ignore' })
  const stop = () => { child.kill('SIGINT'); child.once('exit', () => rmSync(root, { recursive: true, force: true })) }
  for (let i = 0; i < 300; i++) {
    if (await accepts(port)) return { port, stop, cpuUs: () => treeCpuUs(child.pid) }
    await sleep(50)
  }
  stop()
  throw new Error(`postgres did not start on port ${port}`)
}

// Real memcached processes on free loopback ports, for the MemcachedStore tests. Never the
// machine's own memcached on 11211: every port is picked above 20000.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { connect } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import * as memjs from 'memjs'
import type { MemjsClient } from '../../src/index'
import { freePort } from './free-port'

const HOST = '127.0.0.1'
const READY_TIMEOUT_MS = 15_000
const live = new Set<ChildProcess>()

// A failed or interrupted run must leave no server behind (SIGKILL ends a stopped one too).
function killAll (): void {
  for (const child of live) child.kill('SIGKILL')
}
process.on('exit', killAll)
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    killAll()
    process.kill(process.pid, signal)
  })
}

/** Why the memcached tests cannot run here, or undefined when they can. */
export function missingMemcached (): string | undefined {
  return spawnSync('memcached', ['-V']).error === undefined ? undefined : 'memcached is not installed (not on PATH)'
}

/** True when the file must skip its memcached tests; under CI=true a missing server fails. */
export function memcachedUnavailable (t: tap.Test): boolean {
  const reason = missingMemcached()
  if (reason === undefined) return false
  if (process.env.CI === 'true') throw new Error(`memcached tests cannot run under CI=true: ${reason}`)
  t.comment(`skipping the memcached tests: ${reason}`)
  t.plan(0, reason)
  return true
}

export async function waitFor (what: string, check: () => Promise<boolean>, timeoutMs = READY_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return
    await sleep(50)
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
}

// A crawler dump is written by another thread of memcached, after the answers to later
// commands; it ends with END, or is refused with BUSY or an ERROR line.
const DUMP_END = /(^|\n)(END|BUSY[^\r]*|[A-Z_]*ERROR[^\r]*)\r\n$/

/**
 * Sends a text-protocol command on a connection of its own and resolves what the server
 * answered, up to `end` (by default, up to the answer of a no-op sent after the command).
 */
export function textCommand (port: number, command: string, end?: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, HOST)
    let answer = ''
    socket.setTimeout(10_000, () => socket.destroy(new Error(`no answer to ${command}`)))
    socket.on('error', reject)
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString('latin1')
      if (end === undefined ? !answer.endsWith('MN\r\n') : !end.test(answer)) return
      socket.end()
      resolve(end === undefined ? answer.slice(0, -'MN\r\n'.length) : answer)
    })
    socket.write(end === undefined ? `${command}\r\nmn\r\n` : `${command}\r\n`)
  })
}

/** One item as the server holds it. */
export interface RawItem {
  key: string
  value: string
}

export interface MemcachedServer {
  port: number
  /** `127.0.0.1:port`, for memjs.Client.create. */
  address: string
  readonly pid: number
  /** A memjs client on this server, closed by stop(); memjs' console logging is silenced. */
  client (options?: memjs.ClientOptions & memjs.ServerOptions): memjs.Client
  /** Every key the server holds (`lru_crawler metadump hash`), with its value. */
  items (): Promise<RawItem[]>
  /** Seconds the server still keeps `key` (-1: for ever), or undefined when it does not hold it. */
  ttl (key: string): Promise<number | undefined>
  /** Sends a signal: SIGSTOP freezes the server, SIGCONT resumes it, SIGKILL ends it. */
  signal (signal: NodeJS.Signals): Promise<void>
  /** Starts the same server again on the same port, empty. */
  restart (): Promise<void>
  stop (): Promise<void>
}

function exited (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => child.once('exit', () => resolve()))
}

async function launch (port: number, extra: string[]): Promise<ChildProcess> {
  // -U 0: no UDP. As root memcached must be told which user to run as.
  const args = ['-p', String(port), '-U', '0', '-l', HOST, ...(process.getuid?.() === 0 ? ['-u', 'root'] : []), ...extra]
  const child = spawn('memcached', args, { stdio: ['ignore', 'pipe', 'pipe'] })
  live.add(child)
  child.once('exit', () => live.delete(child))
  let output = ''
  child.stdout?.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr?.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const up = waitFor(`memcached on port ${port}`, async () => (await textCommand(port, 'version')).startsWith('VERSION'))
  const died = exited(child).then(() => { throw new Error(`memcached on port ${port} exited:\n${output}`) })
  await Promise.race([up, died])
  return child
}

async function keysOf (port: number): Promise<string[]> {
  for (;;) {
    // `metadump all` walks the LRU lists and misses items that were just fetched (they are
    // being moved between lists; measured on 1.6.18); `metadump hash` walks the hash table.
    const dump = await textCommand(port, 'lru_crawler metadump hash', DUMP_END)
    // One crawl at a time per server: another one under way answers BUSY.
    if (dump.startsWith('BUSY')) {
      await sleep(20)
      continue
    }
    return [...dump.matchAll(/^key=(\S+)/gm)].map((m) => decodeURIComponent(m[1]))
  }
}

async function valueOf (port: number, key: string): Promise<string | undefined> {
  const answer = await textCommand(port, `mg ${key} v`)
  const found = /^VA (\d+)[^\r]*\r\n/.exec(answer)
  return found === null ? undefined : answer.slice(found[0].length, found[0].length + Number(found[1]))
}

/** Starts a memcached of its own; `extra` adds arguments, such as `['-I', '2m']`. */
export async function startMemcached (extra: string[] = []): Promise<MemcachedServer> {
  const port = await freePort()
  let child = await launch(port, extra)
  const clients: memjs.Client[] = []
  const address = `${HOST}:${port}`
  return {
    port,
    address,
    get pid () { return child.pid as number },
    client (options = {}) {
      const client = memjs.Client.create(address, { logger: { log () {} }, ...options })
      clients.push(client)
      return client
    },
    async items () {
      const items: RawItem[] = []
      for (const key of await keysOf(port)) {
        const value = await valueOf(port, key)
        if (value !== undefined) items.push({ key, value })
      }
      return items
    },
    async ttl (key) {
      const found = /^HD t(-?\d+)/.exec(await textCommand(port, `mg ${key} t`))
      return found === null ? undefined : Number(found[1])
    },
    async signal (signal) {
      child.kill(signal)
      if (signal === 'SIGKILL') await exited(child)
    },
    async restart () { child = await launch(port, extra) },
    async stop () {
      for (const client of clients) client.close()
      child.kill('SIGKILL')
      await exited(child)
    }
  }
}

/** A memjs client on several servers, closed when the test ends; memjs' logging silenced. */
export function clientOn (t: tap.Test, servers: MemcachedServer[], options: memjs.ClientOptions & memjs.ServerOptions = {}): memjs.Client {
  const client = memjs.Client.create(servers.map((s) => s.address).join(','), { logger: { log () {} }, ...options })
  t.teardown(() => client.close())
  return client
}

/** Binary-protocol opcodes, as the requests a client sends name them. */
const OPCODES: Record<number, string> = { 0: 'get', 1: 'set', 2: 'add', 3: 'replace', 4: 'delete' }

/** A client that records the operation of every request sent through it, then sends it. */
export function counting (client: MemjsClient): MemjsClient & { sent: string[] } {
  const sent: string[] = []
  return {
    sent,
    get seq () { return client.seq },
    incrSeq: () => client.incrSeq(),
    perform (key, request, seq, callback, retries) {
      sent.push(OPCODES[request[1]] ?? String(request[1]))
      client.perform(key, request, seq, callback, retries)
    }
  }
}

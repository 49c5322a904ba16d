// A throwaway redis-server for the Redis contenders: loopback, a free port, nothing on disk.
import { spawn, spawnSync } from 'node:child_process'
import { createServer } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'

export function freePort () {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    }).on('error', reject)
  })
}

/** Why the Redis contenders cannot run here, or undefined when they can. */
export function missingRedis () {
  const probe = spawnSync('redis-server', ['--version'])
  return probe.error === undefined ? undefined : 'redis-server is not installed (apt-get install redis-server)'
}

async function ping (port) {
  const result = spawnSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' })
  return result.stdout?.trim() === 'PONG'
}

/** Starts redis-server; resolves with { port, stop }. */
export async function startRedis () {
  const port = await freePort()
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  for (let i = 0; i < 100; i++) {
    if (await ping(port)) return { port, stop: () => child.kill() }
    await sleep(50)
  }
  child.kill()
  throw new Error(`redis-server did not start on port ${port}`)
}

// A throwaway memcached for the Memcached contenders: loopback, a free port, 64 MB.
import { spawn, spawnSync } from 'node:child_process'
import { connect } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort } from './redis.mjs'

/** Why the Memcached contenders cannot run here, or undefined when they can. */
export function missingMemcached () {
  return spawnSync('memcached', ['-V']).error === undefined ? undefined : 'memcached is not installed (apt-get install memcached)'
}

function answers (port) {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => { socket.end(); resolve(true) }).on('error', () => resolve(false))
  })
}

/** Starts memcached; resolves with { port, stop }. */
export async function startMemcached () {
  const port = await freePort()
  // As root memcached must be told which user to run as.
  const user = process.getuid?.() === 0 ? ['-u', 'root'] : []
  const child = spawn('memcached', ['-p', String(port), '-U', '0', '-l', '127.0.0.1', '-m', '64', ...user], { stdio: 'ignore' })
  for (let i = 0; i < 100; i++) {
    if (await answers(port)) return { port, stop: () => child.kill() }
    await sleep(50)
  }
  child.kill()
  throw new Error(`memcached did not start on port ${port}`)
}

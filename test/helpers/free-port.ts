// Free loopback ports for the servers the tests start: a redis-server, the demo app.
import { createServer } from 'node:net'

const HOST = '127.0.0.1'
// Ports handed out or probed by this process, so two servers never get the same one.
const taken = new Set<number>()

function portFree (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer()
    probe.once('error', () => resolve(false))
    probe.listen(port, HOST, () => probe.close(() => resolve(true)))
  })
}

/**
 * A free port from 20000 to 44999, whose port + 10000 is free too: a Redis Cluster node
 * also listens there (its bus port). Never the system services' usual ports, such as 6379.
 */
export async function freePort (): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 25_000)
    if (taken.has(port)) continue
    // Claimed before the probe, which waits: servers may be starting concurrently.
    taken.add(port)
    if (await portFree(port) && await portFree(port + 10_000)) return port
  }
  throw new Error('no free port pair found')
}

// Process and HTTP plumbing shared by the benchmark: forking servers, talking to them
// over IPC, and a few plain HTTP calls made with fetch (loopback only).
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const SERVER = fileURLToPath(new URL('./server.mjs', import.meta.url))
const START_TIMEOUT_MS = 15_000

/** Forks a server for `contender`; resolves once it listens, with its url and an rpc(). */
export function startServer (contender, env = {}, execArgv = []) {
  const child = fork(SERVER, [contender], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, ...env }, execArgv })
  const pending = new Map()
  let nextId = 0
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${contender}: server did not start`)), START_TIMEOUT_MS)
    child.once('exit', (code) => reject(new Error(`${contender}: server exited with ${code}`)))
    child.on('message', (msg) => {
      if (msg.ready) {
        clearTimeout(timer)
        return resolve({
          contender,
          url: `http://127.0.0.1:${msg.port}`,
          rpc: (cmd) => new Promise((resolve) => { pending.set(++nextId, resolve); child.send({ id: nextId, cmd }) }),
          stop: () => child.kill(),
          // Lets the server exit by itself (it does when the IPC channel closes), writing any --cpu-prof.
          disconnect: () => new Promise((resolve) => { child.once('exit', resolve); child.disconnect() })
        })
      }
      pending.get(msg.id)?.(msg)
      pending.delete(msg.id)
    })
  })
}

/** The `name=value` part of a response's first Set-Cookie header. */
function cookieOf (response) {
  const header = response.headers.getSetCookie()[0]
  if (header === undefined) throw new Error(`no Set-Cookie (status ${response.status})`)
  return header.split(';')[0]
}

/** Creates a session with n = 0 and returns its cookie. */
export async function seed (url) {
  const response = await fetch(`${url}/seed`, { method: 'POST' })
  await response.arrayBuffer()
  return cookieOf(response)
}

/** Creates `count` sessions, `parallel` at a time, and returns their cookies. */
export async function createSessions (url, count, parallel = 20) {
  const cookies = []
  for (let i = 0; i < count; i += parallel) {
    const batch = Math.min(parallel, count - i)
    cookies.push(...await Promise.all(Array.from({ length: batch }, () => seed(url))))
  }
  return cookies
}

/** Sends all requests at once on separate connections; resolves with their status codes. */
export function fireAll (url, cookie, paths) {
  return Promise.all(paths.map(async (path) => {
    const response = await fetch(`${url}${path}`, { method: 'POST', headers: { cookie } })
    await response.arrayBuffer()
    return response.status
  }))
}

/** What survived in a session: { keys: how many of k0..k99 exist, n: the counter }. */
export async function dump (url, cookie) {
  const response = await fetch(`${url}/dump`, { headers: { cookie } })
  return response.json()
}

export const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

import autocannon from 'autocannon'
import { execFileSync, spawn } from 'node:child_process'
import { createSessions, startServer } from './lib/harness.mjs'
const [out, path = '/counter', method = 'POST'] = process.argv.slice(2)
const server = await startServer('sessions-redis', { REDIS_PORT: '6379' })
const cookies = await createSessions(server.url, 1000)
const pid = execFileSync('pgrep', ['-n', '-f', 'lib/server.mjs sessions-redis']).toString().trim()
const tracer = spawn('strace', ['-c', '-f', '-e', 'trace=writev,write,sendto', '-p', pid, '-o', out])
await new Promise((r) => setTimeout(r, 500))
let i = 0
const requests = [{ method, path, setupRequest: (req) => ({ ...req, headers: { ...req.headers, cookie: cookies[i++ % cookies.length] } }) }]
const result = await autocannon({ url: server.url, connections: 50, duration: 4, requests })
tracer.kill('SIGINT')
await new Promise((r) => tracer.once('exit', r))
console.log('requests', result.requests.total)
server.stop()

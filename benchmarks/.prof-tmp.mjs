import autocannon from 'autocannon'
import { createSessions, startServer } from './lib/harness.mjs'
const [dir, path = '/counter', method = 'POST'] = process.argv.slice(2)
const server = await startServer('sessions-redis', { REDIS_PORT: '6379' }, ['--cpu-prof', `--cpu-prof-dir=${dir}`])
const cookies = await createSessions(server.url, 1000)
let i = 0
const requests = [{ method, path, setupRequest: (req) => ({ ...req, headers: { ...req.headers, cookie: cookies[i++ % cookies.length] } }) }]
const result = await autocannon({ url: server.url, connections: 50, duration: 6, requests })
console.log("requests", result.requests.total)
await server.disconnect()

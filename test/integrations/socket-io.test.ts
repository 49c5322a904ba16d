import t from 'tap'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import type { Server } from 'socket.io'
import { io as connect, type Socket } from 'socket.io-client'
import { build } from '../helpers/app'
import { dump, seed } from '../helpers/faulty-app'
import { readmeExample } from '../helpers/readme-example'
import { stateRoutes } from '../helpers/routes'
import { StoreSpy } from '../helpers/store-spy'
import { attachSocketIo } from './socket-io-app'

// socket.io attached to app.server, with socket.io-client, running the README's example
// (socket-io-app.ts): a middleware loads the session with fastify.sessions.load(socket.request).

async function socketApp (t: tap.Test, store = new StoreSpy()): Promise<{ app: FastifyInstance, io: Server, url: string }> {
  const app = await build({ store }, stateRoutes)
  const io = attachSocketIo(app)
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => {
    io.disconnectSockets(true)
    io.engine.close()
    await app.close()
  })
  return { app, io, url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}` }
}

function client (t: tap.Test, url: string, cookie?: string): Socket {
  const socket = connect(url, { extraHeaders: cookie === undefined ? {} : { cookie }, reconnection: false, forceNew: true })
  t.teardown(() => socket.close())
  return socket
}

/** Resolves when the socket connects, rejects with the server's refusal. */
async function connected (socket: Socket): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('connect_error', reject)
  })
}

t.test('a logged-in browser connects, and save() from a socket event stores a change a later HTTP request sees', async (t) => {
  const { app, url } = await socketApp(t)
  const cookie = await seed(app, 'user', 'ada')
  const socket = client(t, url, cookie)
  await connected(socket)
  t.equal(await socket.emitWithAck('join', 'lobby'), 'joined lobby')
  t.same((await dump(app, cookie)).data, { user: 'ada', room: 'lobby' })
  t.equal(await socket.emitWithAck('join', 'garden'), 'joined garden', 'a second event saves again')
  t.same((await dump(app, cookie)).data, { user: 'ada', room: 'garden' })
})

t.test('a socket without a logged-in session is refused: no cookie, a forged one, one logged out', async (t) => {
  const { app, url } = await socketApp(t)
  const cookie = await seed(app, 'user', 'ada')
  const loggedOut = await seed(app, 'user', 'bob')
  await app.inject({ method: 'POST', url: '/logout', headers: { cookie: loggedOut } })
  const forged = cookie.slice(0, -2) + (cookie.endsWith('AA') ? 'BB' : 'AA')
  const cases: Array<[string, string | undefined]> = [['no cookie', undefined], ['forged', forged], ['logged out', loggedOut]]
  for (const [what, sent] of cases) {
    await t.rejects(connected(client(t, url, sent)), { message: 'not logged in' }, what)
  }
  await connected(client(t, url, cookie))
  t.pass('the logged-in cookie still connects')
})

t.test('save() from a socket keeps what HTTP requests stored meanwhile, and reload() reads it', async (t) => {
  const { app, io, url } = await socketApp(t)
  const cookie = await seed(app, 'user', 'ada')
  const socket = client(t, url, cookie)
  await connected(socket)
  await app.inject({ method: 'POST', url: '/put', query: { key: 'theme', value: 'dark' }, headers: { cookie } })
  t.equal(await socket.emitWithAck('join', 'lobby'), 'joined lobby')
  t.same((await dump(app, cookie)).data, { user: 'ada', theme: 'dark', room: 'lobby' }, 'the save kept the HTTP change')

  const [{ data: { session } }] = await io.fetchSockets()
  await app.inject({ method: 'POST', url: '/put', query: { key: 'lang', value: 'en' }, headers: { cookie } })
  t.equal(session.get('lang'), undefined, 'the socket holds the session as it last loaded or saved it')
  await session.reload()
  t.equal(session.get('lang'), 'en', 'reload() reads what the HTTP request stored')
})

t.test('a socket whose session was logged out meanwhile cannot save it back', async (t) => {
  const store = new StoreSpy()
  const { app, url } = await socketApp(t, store)
  const cookie = await seed(app, 'user', 'ada')
  const socket = client(t, url, cookie)
  await connected(socket)
  await app.inject({ method: 'POST', url: '/logout', headers: { cookie } })
  t.equal(await socket.emitWithAck('join', 'lobby'), 'FST_SESS_CONFLICT')
  t.equal(store.records.size, 0, 'the session stays gone')
})

t.test('a store that fails at the handshake refuses the socket with FST_SESS_STORE_UNAVAILABLE', async (t) => {
  const store = new StoreSpy()
  const { app, url } = await socketApp(t, store)
  const cookie = await seed(app, 'user', 'ada')
  store.fail('get')
  const socket = client(t, url, cookie)
  await t.rejects(connected(socket), { message: /the session store .*read/ })
})

t.test('the README shows the socket.io example exactly as it runs here', async (t) => {
  const example = readmeExample(__dirname, 'socket-io-app.ts')
  t.ok(example.code.length > 500, 'the example was found')
  t.ok(example.inReadme, 'README.md holds the example verbatim')
})

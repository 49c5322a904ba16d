import t from 'tap'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import WebSocket from 'ws'
import { build } from '../helpers/app'
import { dump, seed } from '../helpers/faulty-app'
import { readmeExample } from '../helpers/readme-example'
import { stateRoutes } from '../helpers/routes'
import { StoreSpy } from '../helpers/store-spy'
import { attachUpgrade } from './raw-upgrade-app'

// A raw `upgrade` listener on app.server with the `ws` package, running the README's example
// (raw-upgrade-app.ts): the handshake's session decides who connects, and save() keeps changes.

async function upgradeApp (t: tap.Test, store = new StoreSpy()): Promise<{ app: FastifyInstance, url: string }> {
  const app = await build({ store }, stateRoutes)
  const wss = attachUpgrade(app)
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => {
    for (const client of wss.clients) client.terminate()
    wss.close()
    await app.close()
  })
  return { app, url: `ws://127.0.0.1:${(app.server.address() as AddressInfo).port}/` }
}

/** The first message of a connection, or the status of the refused handshake. */
async function open (t: tap.Test, url: string, cookie?: string): Promise<{ ws: WebSocket, first: string } | { status: number }> {
  const ws = new WebSocket(url, { headers: cookie === undefined ? {} : { cookie } })
  t.teardown(() => ws.terminate())
  return await new Promise((resolve, reject) => {
    ws.once('message', (message) => resolve({ ws, first: String(message) }))
    ws.once('unexpected-response', (_request, response) => resolve({ status: response.statusCode ?? 0 }))
    ws.once('error', reject)
  })
}

t.test('a logged-in browser is greeted by name and its message is saved in the session', async (t) => {
  const { app, url } = await upgradeApp(t)
  const cookie = await seed(app, 'user', 'ada')
  const opened = await open(t, url, cookie)
  if (!('ws' in opened)) return t.fail(`refused with ${opened.status}`)
  t.equal(opened.first, 'hello ada')
  opened.ws.send('lobby')
  const [answer] = await once(opened.ws, 'message') as [Buffer]
  t.equal(String(answer), 'saved')
  t.same((await dump(app, cookie)).data, { user: 'ada', room: 'lobby' })
})

t.test('no session, a forged cookie or a store that fails: the handshake is refused', async (t) => {
  const store = new StoreSpy()
  const { app, url } = await upgradeApp(t, store)
  const cookie = await seed(app, 'user', 'ada')
  const forged = cookie.slice(0, -2) + (cookie.endsWith('AA') ? 'BB' : 'AA')
  t.same(await open(t, url), { status: 401 }, 'no cookie')
  t.same(await open(t, url, forged), { status: 401 }, 'forged')
  store.fail('get')
  t.same(await open(t, url, cookie), { status: 503 }, 'the store failed')
})

t.test('the README shows the upgrade example exactly as it runs here', async (t) => {
  const example = readmeExample(__dirname, 'raw-upgrade-app.ts')
  t.ok(example.code.length > 400, 'the example was found')
  t.ok(example.inReadme, 'README.md holds the example verbatim')
})

import t from 'tap'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import fastifyWebsocket from '@fastify/websocket'
import type { FastifyInstance } from 'fastify'
import WebSocket from 'ws'
import { MemoryStore, type Session } from '../../src/index'
import { build } from '../helpers/app'
import { dump, seed } from '../helpers/faulty-app'
import { stateRoutes } from '../helpers/routes'

// @fastify/websocket on a listening server, with the `ws` client. The upgrade request goes
// through the route's hooks, so request.session is loaded as for any route; after the
// upgrade the reply is hijacked and no Set-Cookie can reach the client.

/** What the handler answers to each command: a value, or the code of the error it hit. */
type Answer = { ok: unknown } | { code: string, message: string }

async function websocketApp (t: tap.Test, store = new MemoryStore()): Promise<{ app: FastifyInstance, url: string }> {
  const app = await build({ store }, (app) => {
    stateRoutes(app)
    app.register(fastifyWebsocket)
    app.register(async (app) => {
      app.get('/ws', { websocket: true }, (socket, request) => {
        socket.on('message', (message) => {
          answer(String(message), request.session).then(
            (ok) => socket.send(JSON.stringify({ ok })),
            (err: { code: string, message: string }) => socket.send(JSON.stringify({ code: err.code, message: err.message }))
          )
        })
      })
    })
  })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, url: `ws://127.0.0.1:${(app.server.address() as AddressInfo).port}/ws` }
}

async function answer (command: string, session: Session): Promise<unknown> {
  const [name, value] = command.split(':')
  if (name === 'whoami') return { user: session.get('user') ?? null, isNew: session.isNew }
  if (name === 'set') {
    session.set('room', value)
    await session.save()
    return 'saved'
  }
  if (name === 'note') {
    session.set('note', value)
    return 'noted'
  }
  if (name === 'regenerate') await session.regenerate()
  else if (name === 'destroy') await session.destroy()
  else throw Object.assign(new Error('unknown command'), { code: 'UNKNOWN' })
  return name
}

/** A connected client that sends one command at a time and waits for its answer. */
async function connect (t: tap.Test, url: string, cookie?: string): Promise<(command: string) => Promise<Answer>> {
  const ws = new WebSocket(url, { headers: cookie === undefined ? {} : { cookie } })
  t.teardown(() => ws.close())
  await once(ws, 'open')
  return async (command) => {
    ws.send(command)
    const [message] = await once(ws, 'message') as [Buffer]
    return JSON.parse(String(message)) as Answer
  }
}

t.test('the logged-in session is request.session in the websocket handler, and save() stores a change HTTP sees', async (t) => {
  const { app, url } = await websocketApp(t)
  const cookie = await seed(app, 'user', 'ada')
  const ask = await connect(t, url, cookie)
  t.same(await ask('whoami'), { ok: { user: 'ada', isNew: false } })
  t.same(await ask('set:lobby'), { ok: 'saved' })
  t.same((await dump(app, cookie)).data, { user: 'ada', room: 'lobby' }, 'the next HTTP request sees the change')
  t.same(await ask('set:garden'), { ok: 'saved' }, 'saved again from the same connection')
  t.same((await dump(app, cookie)).data, { user: 'ada', room: 'garden' })
  t.same(await ask('note:unsaved'), { ok: 'noted' })
  t.same((await dump(app, cookie)).data, { user: 'ada', room: 'garden' }, 'a change without save() is not committed by itself')
})

t.test('a session destroyed by another request meanwhile is not brought back by the websocket\'s save()', async (t) => {
  const store = new MemoryStore()
  const { app, url } = await websocketApp(t, store)
  const cookie = await seed(app, 'user', 'ada')
  const ask = await connect(t, url, cookie)
  t.same(await ask('whoami'), { ok: { user: 'ada', isNew: false } }, 'loaded at the upgrade')
  await app.inject({ method: 'POST', url: '/logout', headers: { cookie } })

  const refused = await ask('set:lobby') as { code: string }
  t.equal(refused.code, 'FST_SESS_CONFLICT', 'the save is a conflict')
  const after = await dump(app, cookie)
  t.same([after.isNew, after.data], [true, {}], 'the session stays gone')
  t.equal(store.size, 0, 'no record came back')
})

t.test('after the upgrade, what needs a new cookie is refused: storing an anonymous session, regenerate()', async (t) => {
  const { app, url } = await websocketApp(t)
  const anonymous = await connect(t, url)
  t.same(await anonymous('whoami'), { ok: { user: null, isNew: true } })
  const stored = await anonymous('set:lobby') as { code: string, message: string }
  t.equal(stored.code, 'FST_SESS_COOKIE_UNDELIVERABLE', 'a new session cannot be stored: no client could name it')
  t.match(stored.message, /save\(\) needs to send a new session cookie, and the reply was already sent or hijacked/)

  const cookie = await seed(app, 'user', 'ada')
  const ask = await connect(t, url, cookie)
  t.equal((await ask('regenerate') as { code: string }).code, 'FST_SESS_COOKIE_UNDELIVERABLE', 'regenerate()')
  t.same((await dump(app, cookie)).data, { user: 'ada' }, 'the session is as it was')
  t.same(await ask('destroy'), { ok: 'destroy' }, 'destroy() only removes the record')
  t.equal((await dump(app, cookie)).isNew, true, 'gone for HTTP requests too')
})

t.test('a handshake from another site is refused before the upgrade (cross-site WebSocket hijacking)', async (t) => {
  const { app, url } = await websocketApp(t)
  const cookie = await seed(app, 'user', 'ada')
  const status = async (headers: Record<string, string>): Promise<number> => {
    const ws = new WebSocket(url, { headers: { cookie, ...headers } })
    // Ending a refused handshake reports an error: the status already told the outcome.
    ws.on('error', () => {})
    const outcome = await new Promise<number>((resolve) => {
      ws.on('open', () => resolve(101))
      // The server ends a refused handshake's connection itself: nothing is left open.
      ws.on('unexpected-response', (_req, res) => res.socket.once('close', () => resolve(res.statusCode ?? 0)))
    })
    ws.terminate()
    return outcome
  }
  t.equal(await status({ origin: 'https://evil.example' }), 403, 'a foreign Origin')
  t.equal(await status({ origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' }), 403, 'Sec-Fetch-Site: cross-site')
  const own = new URL(url)
  t.equal(await status({ origin: `http://${own.host}` }), 101, 'the page\'s own origin opens')
  t.equal(await status({}), 101, 'a client that is not a browser opens')
})

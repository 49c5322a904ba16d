import type { FastifyInstance } from 'fastify'
import { Server } from 'socket.io'
import type { Session } from '../../src/index'

// The README's socket.io example, run by socket-io.test.ts; the test checks that the README
// shows exactly the code between the two markers.

export function attachSocketIo (app: FastifyInstance): Server {
  // README: begin
  interface ClientEvents { join: (room: string, done: (answer: string) => void) => void }
  interface SocketData { session: Session }

  const io = new Server<ClientEvents, object, object, SocketData>(app.server)

  // The handshake request carries the browser's cookies: its session decides who connects.
  io.use(async (socket, next) => {
    try {
      const session = await app.sessions.load(socket.request)
      if (session.get('user') === undefined) return next(new Error('not logged in'))
      socket.data.session = session
      next()
    } catch (err) {
      next(err as Error) // FST_SESS_STORE_UNAVAILABLE: the store did not answer
    }
  })

  io.on('connection', (socket) => {
    socket.on('join', async (room, done) => {
      const { session } = socket.data
      session.set('room', room)
      try {
        await session.save() // compare-and-set, as for a route; nothing is saved without it
        done('joined ' + room)
      } catch (err) {
        done((err as { code: string }).code) // FST_SESS_CONFLICT: logged out meanwhile
      }
    })
  })
  // README: end
  return io
}

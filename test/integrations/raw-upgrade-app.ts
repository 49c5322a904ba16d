import type { FastifyInstance } from 'fastify'
import { WebSocketServer } from 'ws'

// The README's raw `upgrade` example, run by raw-upgrade.test.ts; the test checks that the
// README shows exactly the code between the two markers.

export function attachUpgrade (app: FastifyInstance): WebSocketServer {
  // README: begin
  const wss = new WebSocketServer({ noServer: true })

  app.server.on('upgrade', (request, socket, head) => {
    app.sessions.load(request).then((session) => {
      const user = session.get('user')
      if (user === undefined) return socket.end('HTTP/1.1 401 Unauthorized\r\n\r\n')
      wss.handleUpgrade(request, socket, head, (ws) => {
        ws.send(`hello ${String(user)}`)
        ws.on('message', (room) => {
          session.set('room', String(room))
          session.save().then(() => ws.send('saved'), (err) => ws.send(err.code))
        })
      })
    }, () => socket.end('HTTP/1.1 503 Service Unavailable\r\n\r\n'))
  })
  // README: end
  return wss
}

import Fastify, { type FastifyInstance, type FastifyServerOptions, type LightMyRequestResponse } from 'fastify'
import fastifySessions, { type FastifySessionsOptions } from '../../src/index'

export const SECRET = 'a-test-secret-that-is-long-enough-0001'
export const OLD_SECRET = 'an-older-secret-that-is-long-enough-02'

/** A Fastify app with the plugin registered and the routes the test adds. */
export async function build (
  options: Partial<FastifySessionsOptions> = {},
  routes: (app: FastifyInstance) => void = () => {},
  fastifyOptions: FastifyServerOptions = {}
): Promise<FastifyInstance> {
  const app: FastifyInstance = Fastify(fastifyOptions)
  await app.register(fastifySessions, { secret: SECRET, ...options })
  routes(app)
  await app.ready()
  return app
}

/** The `name=value` part of the session cookie a response set, if any. */
export function sessionCookie (res: LightMyRequestResponse, name = 'sid'): string | undefined {
  const header = res.headers['set-cookie']
  const all = header === undefined ? [] : Array.isArray(header) ? header : [header]
  const found = all.find((c) => c.startsWith(`${name}=`))
  return found?.split(';')[0]
}

/** The full Set-Cookie line of the session cookie. */
export function setCookieLine (res: LightMyRequestResponse, name = 'sid'): string | undefined {
  const header = res.headers['set-cookie']
  const all = header === undefined ? [] : Array.isArray(header) ? header : [header]
  return all.find((c) => c.startsWith(`${name}=`))
}

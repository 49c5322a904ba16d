import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { sessionCookie } from './app'

/** A browser's cookie jar in one variable: each response's session cookie replaces the last. */
export class Browser {
  cookie: string | undefined

  constructor (readonly app: FastifyInstance) {}

  async send (method: 'GET' | 'POST', url: string, payload?: object): Promise<LightMyRequestResponse> {
    const headers = this.cookie === undefined ? {} : { cookie: this.cookie }
    const res = await this.app.inject({ method, url, headers, payload })
    this.cookie = sessionCookie(res) ?? this.cookie
    return res
  }
}

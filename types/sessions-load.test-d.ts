import Fastify from 'fastify'
import type { IncomingMessage } from 'node:http'
import { expectError, expectType } from 'tsd'
import { CookieUndeliverableError, NotARequestError, Session } from '..'

const app = Fastify()
declare const raw: IncomingMessage

// fastify.sessions.load(): a raw Node request in, a Session out.
expectType<Promise<Session>>(app.sessions.load(raw))
app.sessions.load(raw).then(async (session) => {
  expectType<string>(session.id)
  expectType<Promise<void>>(session.save())
})
expectError(app.sessions.load())
expectError(app.sessions.load('sid=abc'))
expectError(app.sessions.load({ headers: 42 }))

expectType<'FST_SESS_COOKIE_UNDELIVERABLE'>(new CookieUndeliverableError('regenerate', 'sessions.load() has no reply').code)
expectType<'FST_SESS_NOT_A_REQUEST'>(new NotARequestError('undefined').code)

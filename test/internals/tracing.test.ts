import t from 'tap'
import { tracingChannel } from 'node:diagnostics_channel'
import { storeName, traced, type TraceMessage } from '../../src/tracing'

// A channel of its own, so that nothing the plugin publishes reaches these tests.
const channel = tracingChannel<unknown, TraceMessage>('fastify-sessions-test:traced')

t.test('unsubscribed, traced() returns what fn returned, the same object, and publishes nothing', async (t) => {
  const pending = Promise.resolve(1)
  t.equal(traced(channel, { store: 'x', async: false }, () => pending), pending)
  t.equal(traced(channel, { store: 'x', async: false }, () => 2), 2)
})

t.test('subscribed, a value stays a value and a promise stays a promise', async (t) => {
  const events: string[] = []
  const handlers = {
    start: () => events.push('start'),
    end: (m: TraceMessage) => events.push(`end ${m.async}`),
    asyncStart: () => events.push('asyncStart'),
    asyncEnd: () => events.push('asyncEnd'),
    error: () => events.push('error')
  }
  channel.subscribe(handlers)
  t.teardown(() => { channel.unsubscribe(handlers) })
  t.equal(traced(channel, { store: 'x', async: false }, () => 2), 2, 'synchronous for subscribers too')
  t.same(events.splice(0), ['start', 'end false'])
  const waited = traced(channel, { store: 'x', async: false }, async () => 3)
  t.type(waited, Promise)
  t.equal(await waited, 3)
  t.same(events.splice(0), ['start', 'end true', 'asyncStart', 'asyncEnd'])
  t.throws(() => traced(channel, { store: 'x', async: false }, () => { throw new Error('thrown') }), /thrown/)
  t.same(events.splice(0), ['start', 'error', 'end false'])
  await t.rejects(traced(channel, { store: 'x', async: false }, async () => { throw new Error('rejected') }) as Promise<never>, /rejected/)
  t.same(events.splice(0), ['start', 'end true', 'error', 'asyncStart', 'asyncEnd'])
})

t.test('a store is named by its class; one without a prototype is an Object', async (t) => {
  class NamedStore {}
  t.equal(storeName(new NamedStore()), 'NamedStore')
  t.equal(storeName({}), 'Object')
  t.equal(storeName(Object.create(null) as object), 'Object')
})

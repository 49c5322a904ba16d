import type { FastifyReply, FastifyRequest } from 'fastify'
import t from 'tap'
import { loadedState, type Backend } from '../../src/backends/backend'
import { defaultAttributes } from '../../src/cookie-line'
import { CsrfTokens } from '../../src/crypto/csrf-tokens'
import { resolveOptions } from '../../src/options'
import { Revocations } from '../../src/revocations'
import { Session, type SessionContext } from '../../src/session'
import { MAX_ATTEMPTS, type Backoff } from '../../src/write-record'
import { SECRET } from '../helpers/app'
import { fakeBackend } from '../helpers/fake-backend'

const options = resolveOptions({ secret: SECRET })
const record = () => ({ data: { n: 1 }, version: 3, createdAt: Date.now(), expiresAt: Date.now() + 60_000 })

/** A backend that answers compare-and-set as told. */
function backend (compareAndSet: Backend['compareAndSet'], read: Backend['read'] = async () => record()): Backend {
  return fakeBackend({ compareAndSet, read })
}

function session (b: Backend, backoff: Backoff = async () => {}): Session {
  const ctx: SessionContext = { options, backend: b, backoff, revocations: new Revocations(options, undefined, undefined), csrfTokens: new CsrfTokens(options.secrets), attributes: defaultAttributes(options.cookie) }
  // The session reads nothing of the request or reply while it only updates data.
  return new Session(ctx, {} as FastifyRequest, {} as FastifyReply, loadedState('id', 'key', record(), 'cookie', undefined))
}

t.test('update() gives up with a conflict after MAX_ATTEMPTS, backing off between attempts, keeping none of its changes', async (t) => {
  let attempts = 0
  const waits: number[] = []
  const s = session(backend(() => { attempts++; return false }), async (attempt) => { waits.push(attempt) })
  await t.rejects(s.update((x) => { x.set('n', 2); x.set('added', true) }), { code: 'FST_SESS_CONFLICT', message: /gave up after/ })
  t.equal(attempts, MAX_ATTEMPTS)
  t.same(waits, Array.from({ length: MAX_ATTEMPTS - 1 }, (_, i) => i))
  t.same(s.data(), { n: 1 }, 'the stored copy, without the changes that were never stored')
})

t.test('an update whose write fails keeps none of its changes', async (t) => {
  const s = session(backend(async () => { throw new Error('down') }))
  await t.rejects(s.update((x) => { x.set('n', 2) }), /down/)
  t.same(s.data(), { n: 1 })
})

t.test('update() re-runs its function on the newer copy after a conflict', async (t) => {
  let attempts = 0
  const s = session(backend(() => ++attempts > 1, async () => ({ ...record(), data: { n: 10 }, version: 4 })))
  await s.update((x) => { x.set('n', (x.get('n') as number) + 1) })
  t.equal(s.get('n'), 11, 'computed from the newer copy')
  t.equal(attempts, 2)
})

t.test('update() on a session destroyed meanwhile is a conflict, not a resurrection', async (t) => {
  const s = session(backend(() => false, async () => undefined))
  await t.rejects(s.update((x) => { x.set('n', 2) }), { code: 'FST_SESS_CONFLICT', message: /destroyed or regenerated/ })
})

t.test('a function that throws at once leaves nothing behind, with a backend that never waits', async (t) => {
  const s = session(backend(() => true))
  const boom = new Error('boom')
  await t.rejects(s.update((x) => { x.set('n', 99); x.set('other', true); throw boom }), boom)
  t.equal(s.get('n'), 1)
  t.equal(s.has('other'), false)
  await s.update((x) => { x.set('n', 2) })
  t.equal(s.get('n'), 2, 'the session stays usable')
})

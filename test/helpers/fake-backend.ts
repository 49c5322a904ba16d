import type { Backend } from '../../src/backends/backend'

/**
 * A backend for unit tests of what sits on top of one: the members a test gives, and for
 * the rest tasks that run at once, touches that find the session, and a throw for anything
 * the test did not expect to be called.
 */
export function fakeBackend (members: Partial<Backend>): Backend {
  const unused = (): never => { throw new Error('not used by this test') }
  return {
    maxCookieBytes: Infinity,
    load: unused,
    read: unused,
    compareAndSet: unused,
    touch: () => true,
    destroy: async () => {},
    alive: () => true,
    exclusive: (_state, _operation, task) => task(),
    issue: unused,
    ...members
  }
}

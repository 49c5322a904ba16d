import type { FastifyInstance } from 'fastify'
import type { FastifySessionsOptions } from '../../src/index'
import { build, sessionCookie } from './app'
import { Races } from './gate'

// Logout everywhere through the plugin, the same scenarios for every way sessions are kept.

export const races = new Races()

/** Routes of a small app with sign-in: the race routes wait at the current gate. */
export function accountRoutes (app: FastifyInstance): void {
  app.post('/login', async (req) => {
    const { user, device } = req.query as { user: string, device?: string }
    await req.session.regenerate()
    req.session.set('userId', user)
    if (device !== undefined) req.session.set('device', device)
    return { ok: true }
  })
  app.post('/login-held', async (req) => {
    await req.session.regenerate()
    req.session.set('userId', (req.query as { user: string }).user)
    await races.wait()
    return { ok: true }
  })
  app.post('/write-held', async (req) => {
    req.session.set('note', 'written')
    await races.wait()
    return { ok: true }
  })
  app.post('/logout', async (req) => { await req.session.destroy(); return { ok: true } })
  app.post('/sign-out', async (req) => { await req.session.regenerate(); return { ok: true } })
  app.post('/switch', async (req) => { req.session.set('userId', (req.query as { user: string }).user); return { ok: true } })
  app.post('/cart', async (req) => { req.session.set('cart', ['book']); return { ok: true } })
  app.get('/me', async (req) => ({ userId: req.session.get('userId') ?? null, note: req.session.get('note') ?? null }))
}

export async function login (app: FastifyInstance, user: string, cookie?: string, device?: string): Promise<string> {
  const query = device === undefined ? `user=${user}` : `user=${user}&device=${device}`
  const res = await app.inject({ method: 'POST', url: `/login?${query}`, headers: cookie === undefined ? {} : { cookie } })
  if (res.statusCode !== 200) throw new Error(`login: ${res.statusCode} ${res.body}`)
  return sessionCookie(res) as string
}

export async function whoIs (app: FastifyInstance, cookie: string): Promise<string | null> {
  return (await app.inject({ url: '/me', headers: { cookie } })).json().userId
}

export interface RevocationSetup {
  name: string
  /** Whether the store counts what revokeUser() ended (a per-user index) or stamps them out. */
  counts: boolean
  options: () => Partial<FastifySessionsOptions>
}

/** The revocation scenarios every store with logout everywhere must pass. */
export function revocationScenarios (t: tap.Test, setup: RevocationSetup): void {
    t.test(`${setup.name}: revokeUser ends every session of that user and no other`, async (t) => {
      const app = await build(setup.options(), accountRoutes)
      t.teardown(() => app.close())
      const ada = [await login(app, 'ada'), await login(app, 'ada'), await login(app, 'ada')]
      const bob = await login(app, 'bob')
      t.equal(await app.sessions.revokeUser('ada'), setup.counts ? 3 : undefined, 'how many ended, where the store can count')
      for (const cookie of ada) t.equal(await whoIs(app, cookie), null, 'a revoked session is over')
      t.equal(await whoIs(app, bob), 'bob', 'other users keep theirs')
      const again = await login(app, 'ada')
      t.equal(await whoIs(app, again), 'ada', 'a login right after the revocation works')
      t.equal(await app.sessions.revokeUser('nobody'), setup.counts ? 0 : undefined)
    })

    t.test(`${setup.name}: a write in flight when the user is revoked is not stored and brings nothing back`, async (t) => {
      const app = await build(setup.options(), accountRoutes)
      t.teardown(() => app.close())
      const cookie = await login(app, 'ada')
      const [held] = await races.run(
        () => app.inject({ method: 'POST', url: '/write-held', headers: { cookie } }),
        () => app.sessions.revokeUser('ada')
      )
      if (setup.counts) {
        t.equal(held.statusCode, 409)
        t.equal(held.json().code, 'FST_SESS_CONFLICT')
      } else {
        // A stamp leaves the record (or the cookie) in place: the write is stored, and stamped out.
        t.equal(held.statusCode, 200)
        t.equal(await whoIs(app, sessionCookie(held) ?? cookie), null, 'what it wrote is revoked too')
      }
      t.equal(await whoIs(app, cookie), null)
    })

    t.test(`${setup.name}: a re-login racing the revocation of the session it replaces ends with no session`, async (t) => {
      const app = await build(setup.options(), accountRoutes)
      t.teardown(() => app.close())
      const cookie = await login(app, 'ada')
      const [held] = await races.run(
        () => app.inject({ method: 'POST', url: '/login-held?user=ada', headers: { cookie } }),
        () => app.sessions.revokeUser('ada')
      )
      t.equal(held.statusCode, 409, 'the new session is not kept')
      t.equal(sessionCookie(held), undefined, 'and no cookie for it is sent')
      t.equal(await whoIs(app, cookie), null)
      if (setup.counts) t.same(await app.sessions.listSessions('ada'), [], 'nothing left in the index')
    })

  t.test(`${setup.name}: a login from an anonymous session racing a revocation is kept with an index, stamped out without`, async (t) => {
    const app = await build(setup.options(), accountRoutes)
    t.teardown(() => app.close())
    const [held] = await races.run(
      () => app.inject({ method: 'POST', url: '/login-held?user=ada' }),
      () => app.sessions.revokeUser('ada')
    )
    t.equal(held.statusCode, 200)
    // With stamps the session was created before the stamp: it ends; with an index it was
    // not filed yet when the revocation ran: it is a login after the revocation.
    t.equal(await whoIs(app, sessionCookie(held) as string), setup.counts ? 'ada' : null)
  })
  if (setup.counts) indexScenarios(t, setup)
}

function indexScenarios (t: tap.Test, setup: RevocationSetup): void {
  t.test(`${setup.name}: the index follows the session: regenerate moves it, sign-out and destroy drop it, a user change moves it`, async (t) => {
    const app = await build(setup.options(), accountRoutes)
    t.teardown(() => app.close())
    const count = async (user: string): Promise<number> => (await app.sessions.listSessions(user)).length
    const cart = sessionCookie(await app.inject({ method: 'POST', url: '/cart' })) as string
    const ada = await login(app, 'ada', cart)
    t.equal(await count('ada'), 1, 'filed at login')
    await app.inject({ method: 'POST', url: '/switch?user=bob', headers: { cookie: ada } })
    t.same([await count('ada'), await count('bob')], [0, 1], 'moved with the user')
    await app.inject({ method: 'POST', url: '/sign-out', headers: { cookie: ada } })
    t.equal(await count('bob'), 0, 'regenerate() without a user leaves the index')
    const again = await login(app, 'ada')
    await app.inject({ method: 'POST', url: '/logout', headers: { cookie: again } })
    t.equal(await count('ada'), 0, 'destroy() leaves the index')
  })
}

import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { resolve } from 'node:path'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import type { Collection, Document } from 'mongodb'
import { storeKey } from '../../src/crypto/ids'
import { MongoStore } from '../../src/index'
import { build, SECRET } from '../helpers/app'
import { burst, cookieOf, login, me, post, routes, together } from '../helpers/store-plugin'
import { logLines, sessionWarnings } from '../helpers/log-lines'
import { revocationScenarios } from '../helpers/logout-everywhere'
import { helperTarget, mongoTargets, type MongoTarget } from '../helpers/mongo-target'
import { waitFor } from '../helpers/postgres-server'

// MongoStore through the plugin: what each request sends, races within one process and
// across two, what the collection holds, and an outage (on our test server only: a real
// MongoDB cannot be paused or stopped from here).

const UNAVAILABLE = 'FST_SESS_STORE_UNAVAILABLE'
// For the races: the writes of one session run one after another in a process, and the
// bound of each covers its wait in that queue, so on a loaded machine the default 2 s can
// answer 503 to the last of 100. The races are about lost writes; the outage tests below
// check the bound itself.
const RACE_TIMEOUT = 20

const documentsOf = async (collection: Collection<Document>): Promise<Document[]> => await collection.find({}).toArray()

/** A store on a fresh collection whose indexes exist before the test counts anything. */
async function freshStore (target: MongoTarget, collection = target.collection()): Promise<{ store: MongoStore, collection: Collection<Document> }> {
  const store = new MongoStore({ collection })
  await store.destroy('warm-up')
  return { store, collection }
}

mongoTargets(t, (name, start) => {
  t.test(`MongoStore through the plugin on ${name}`, async (t) => {
    const target = await start()
    t.teardown(() => target.stop())
    pluginTests(t, target)
  })
})
t.test('MongoStore: the test server not answering, then stopped, mid-traffic', async (t) => {
  const target = await helperTarget()
  t.teardown(() => target.stop())
  await outageTests(t, target)
})

function pluginTests (t: tap.Test, target: MongoTarget): void {
  t.test('anonymous requests send no command; a read one find and no write; a change one update', async (t) => {
    const client = target.client()
    const { store, collection } = await freshStore(target, target.collection(client))
    const app = await build({ store }, routes)
    t.teardown(() => app.close())
    const sent = (): string[] => client.commands.splice(0).map((c) => c.commandName)
    sent()
    for (let i = 0; i < 5; i++) {
      t.equal((await app.inject('/anon')).statusCode, 200)
      t.same((await app.inject('/me')).json(), { user: null })
    }
    t.same(sent(), [], 'no command without a session cookie')
    const cookie = await login(app)
    t.same(sent(), ['insert'], 'a new session: one insert')
    const before = await documentsOf(collection)
    sent()
    for (let i = 0; i < 5; i++) t.same((await me(app, cookie)).json(), { user: 'ada' })
    t.same(sent(), Array(5).fill('find'), 'one find per read, and no write')
    t.same(await documentsOf(collection), before, 'no document changed')
    sent()
    await app.inject({ method: 'POST', url: '/login', query: { user: 'bob' }, headers: { cookie } })
    t.same(sent(), ['find', 'update'], 'a change: the load and one update')
  })

  t.test('100 concurrent new sessions and 100 concurrent writes of distinct keys all land', async (t) => {
    const { store, collection } = await freshStore(target)
    const app = await build({ store, storeTimeout: RACE_TIMEOUT }, routes)
    t.teardown(() => app.close())
    const logins = await Promise.all(Array.from({ length: 100 }, (_, i) => app.inject({ method: 'POST', url: '/login', query: { user: `u${i}` } })))
    t.same(logins.filter((r) => r.statusCode !== 200), [])
    t.equal((await documentsOf(collection)).length, 100)
    const cookie = cookieOf(logins[0])
    const sets = await together(100, (i) => post(app, `/set/k${i}`, cookie))
    t.same(sets.map((r) => r.statusCode).filter((s) => s !== 200), [])
    const data = (await app.inject({ url: '/dump', headers: { cookie } })).json()
    t.equal(Object.keys(data).filter((k) => k.startsWith('k')).length, 100)
  })

  t.test('100 concurrent update() increments: exactly 100', async (t) => {
    const { store } = await freshStore(target)
    const app = await build({ store, storeTimeout: RACE_TIMEOUT }, routes)
    t.teardown(() => app.close())
    const cookie = await login(app)
    const results = await together(100, () => post(app, '/increment', cookie))
    t.same(results.map((r) => r.statusCode).filter((s) => s !== 200), [])
    t.equal((await app.inject({ url: '/dump', headers: { cookie } })).json().counter, 100)
  })

  t.test('two apps with clients of their own and a second process: no increment lost, every new session stored', async (t) => {
    const { store, collection } = await freshStore(target)
    const other = new MongoStore({ collection: target.client().db(collection.dbName).collection(collection.collectionName) })
    const one = await build({ store, storeTimeout: RACE_TIMEOUT }, routes)
    const two = await build({ store: other, storeTimeout: RACE_TIMEOUT }, routes)
    t.teardown(() => one.close())
    t.teardown(() => two.close())
    const cookie = await login(one)
    const child = spawn(process.execPath, [resolve(__dirname, '../helpers/mongo-child.mjs')], {
      env: { ...process.env, MONGO_URL: target.url, DATABASE: collection.dbName, COLLECTION: collection.collectionName, COOKIE: cookie, COUNT: '50', SECRET, STORE_TIMEOUT: String(RACE_TIMEOUT) },
      stdio: ['pipe', 'pipe', 'inherit']
    })
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
    await waitFor('the second process', async () => output.includes('ready\n'))
    child.stdin.end('go\n')
    const exited = once(child, 'close')
    const results = [
      ...await together(50, (i) => post(i % 2 === 0 ? one : two, '/increment', cookie)),
      ...await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? one : two).inject({ method: 'POST', url: '/login' })))
    ]
    await exited
    const childStatuses = JSON.parse(output.split('\n')[1]) as number[]
    // Three writers on one session at once can exhaust the plugin's bounded compare-and-set
    // retries: such a request answers 409 and changes nothing. What the store guarantees is
    // that no increment is lost and none is applied twice.
    const increments = [...results.slice(0, 50).map((r) => r.statusCode), ...childStatuses.slice(0, 50)]
    const refused = [...results.slice(0, 50).filter((r) => r.statusCode !== 200).map((r) => r.json().code), ...childStatuses.slice(0, 50).filter((s) => s !== 200)]
    t.same(refused.filter((c) => c !== 'FST_SESS_CONFLICT' && c !== 409), [], 'every increment 200 or a 409 conflict')
    t.same(childStatuses.slice(50).filter((s) => s !== 200), [], 'the second process created its 50 sessions')
    t.same(results.slice(50).filter((r) => r.statusCode !== 200), [], 'this process created its 50 sessions')
    const applied = increments.filter((s) => s === 200).length
    t.comment(`increments answered 200: ${applied} of 100`)
    t.ok(applied >= 90, 'nearly all increments succeed')
    const data = (await one.inject({ url: '/dump', headers: { cookie } })).json()
    t.equal(data.counter, applied, 'every increment answered 200 is counted once, and no other')
    t.equal((await documentsOf(collection)).length, 101, 'the session and 100 new ones, 50 from each process')
  })

  t.test('the collection holds digests, never a session id; with encryptAtRest, no plaintext', async (t) => {
    for (const encryptAtRest of [false, true]) {
      const { store, collection } = await freshStore(target)
      const app = await build({ store, encryptAtRest, userKey: 'user' }, routes)
      t.teardown(() => app.close())
      const cookie = await login(app, 'plain-user-name')
      const [id, signature] = cookie.slice('sid='.length).split('.')
      const docs = await documentsOf(collection)
      t.same(docs.map((d) => d._id), [storeKey(id)])
      t.type(docs[0].u, 'string', 'filed under the user\'s digest')
      const dump = JSON.stringify(docs)
      t.notOk(dump.includes(id) || dump.includes(signature), 'no id, no signature')
      t.equal(dump.includes('plain-user-name'), !encryptAtRest, encryptAtRest ? 'no plaintext' : 'the data as JSON')
      t.same((await me(app, cookie)).json(), { user: 'plain-user-name' })
    }
  })

  t.test('a corrupt document gives a fresh session and a warn line', async (t) => {
    const { store, collection } = await freshStore(target)
    const { lines, logger } = logLines('warn')
    const app = await build({ store }, routes, { logger })
    t.teardown(() => app.close())
    const cookie = await login(app)
    await collection.updateOne({}, { $set: { d: '{"user":' } })
    const res = await me(app, cookie)
    t.same([res.statusCode, res.json()], [200, { user: null }])
    t.equal(sessionWarnings(lines).length, 1)
    t.same(await documentsOf(collection), [], 'the document is deleted')
  })

  t.test('indexes that cannot be created: 503 with MongoDB\'s error logged, then working once they can be', async (t) => {
    const collection = target.collection()
    // Someone's own index on the expiry, with other options: MongoDB refuses ours (error 85).
    await collection.createIndex({ e: 1 }, { name: 'e_1', expireAfterSeconds: 3600 })
    const { lines, logger } = logLines('error')
    const app = await build({ store: new MongoStore({ collection }) }, routes, { logger })
    t.teardown(() => app.close())
    const res = await app.inject({ method: 'POST', url: '/login' })
    t.same([res.statusCode, res.json().code], [503, UNAVAILABLE])
    t.notMatch(res.body, /IndexOptionsConflict|existing index/, 'MongoDB\'s error stays out of the reply')
    t.match(JSON.stringify(lines), /caused by: MongoServerError: /, 'and is logged as the cause')
    await collection.drop()
    t.same((await me(app, await login(app))).json(), { user: 'ada' }, 'the next request creates the indexes and works')
  })

  revocationScenarios(t, {
    name: 'MongoStore',
    counts: true,
    options: () => ({ store: new MongoStore({ collection: target.collection() }), userKey: 'userId' })
  })
}

/** A problem with a response, or undefined when it is a success or a clean 503. */
function badResponse (res: LightMyRequestResponse): string | undefined {
  if (res.statusCode === 200) return undefined
  if (res.statusCode === 503 && res.json().code === UNAVAILABLE) return undefined
  return `${res.statusCode} ${res.body}`
}

async function outageTests (t: tap.Test, target: MongoTarget): Promise<void> {
  const server = target.server as NonNullable<MongoTarget['server']>
  // The driver looks for a lost server again every half second, not every ten.
  const client = target.client({ heartbeatFrequencyMS: 500, serverSelectionTimeoutMS: 5000 })
  const { store } = await freshStore(target, target.collection(client))
  const storeTimeout = 0.5
  const app = await build({ store, storeTimeout }, routes)
  t.teardown(() => app.close())
  const cookies = await Promise.all(['a', 'b', 'c'].map((user) => login(app, user)))
  const users = async (): Promise<unknown[]> => await Promise.all(cookies.map(async (cookie) => (await me(app, cookie)).json()))
  const before = JSON.stringify(await users())

  async function underTraffic (t: tap.Test, during: () => unknown): Promise<number> {
    const traffic = { stop: false, bad: [] as string[], count: 0, slowest503: 0 }
    const running = (async () => {
      for (let i = 0; !traffic.stop && i < 10_000; i++) {
        const started = Date.now()
        const res = await me(app, cookies[i % 3])
        const problem = badResponse(res)
        if (problem !== undefined) traffic.bad.push(problem)
        if (res.statusCode === 503) traffic.slowest503 = Math.max(traffic.slowest503, Date.now() - started)
        traffic.count++
      }
    })()
    await waitFor('traffic', async () => traffic.count >= 10)
    await during()
    const reached = traffic.count
    await waitFor('requests against the server', async () => traffic.count >= reached + 3)
    traffic.stop = true
    await running
    t.same(traffic.bad, [], 'traffic across the outage: 200 or a clean 503')
    for (const cookie of cookies) {
      const started = Date.now()
      const res = await me(app, cookie)
      t.same([res.statusCode, res.json().code], [503, UNAVAILABLE])
      traffic.slowest503 = Math.max(traffic.slowest503, Date.now() - started)
    }
    t.equal((await app.inject('/anon')).statusCode, 200, 'requests without a session still work')
    return traffic.slowest503
  }

  t.test('not answering: 503 within storeTimeout; once it answers, the same sessions work again', async (t) => {
    const slowest = await underTraffic(t, () => server.pause())
    t.ok(slowest < storeTimeout * 1000 + 1000, `every 503 within storeTimeout (slowest ${slowest} ms)`)
    server.resume()
    await waitFor('the same sessions to answer again', async () => JSON.stringify(await users()) === before)
    t.pass('the same sessions, as they were')
  })

  t.test('stopped: 503; started again, sessions work without restarting the app', async (t) => {
    const slowest = await underTraffic(t, () => server.stop())
    t.ok(slowest < storeTimeout * 1000 + 1000, `every 503 within storeTimeout (slowest ${slowest} ms)`)
    await server.restart()
    await waitFor('the store to answer again', async () => (await me(app, cookies[0])).statusCode === 200)
    t.equal(JSON.stringify(await users()), before, 'sessions stored before the stop are back')
    const cookie = await login(app, 'after')
    t.same((await me(app, cookie)).json(), { user: 'after' }, 'new sessions work')
  })
}

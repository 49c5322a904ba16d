import type { Case, CaseContext } from '../case'
import type { Check } from '../check'
import { comparable, LIVE_MS, record } from '../record'
import { uniqueKey } from '../unique-key'
import type { SessionRecord, SessionStore, UserSession } from '../../store'

type IndexedStore = SessionStore & Required<Pick<SessionStore, 'listUser' | 'destroyUser'>>

const CONCURRENT_LOGINS = 20

function indexed (store: SessionStore): store is IndexedStore {
  return typeof store.listUser === 'function' && typeof store.destroyUser === 'function'
}

/** A case about the per-user index; a store without one passes it. */
function indexCase (title: string, run: (store: IndexedStore, context: CaseContext) => Promise<void>): Case {
  return {
    title,
    async run (context) {
      if (indexed(context.store)) await run(context.store, context)
    }
  }
}

/** Checks that `listUser(user)` answers exactly `expected`, in any order, as `{ key, record }` entries. */
async function expectListed (store: IndexedStore, check: Check, user: string, expected: UserSession[], what: string): Promise<void> {
  const listed = await store.listUser(user)
  check.ok(Array.isArray(listed), `listUser to resolve an array (${what})`)
  for (const entry of listed) check.same(Object.keys(entry).sort(), ['key', 'record'], `the keys of an entry of listUser (${what})`)
  const sorted = (entries: UserSession[]): UserSession[] =>
    entries.map(({ key, record }) => ({ key, record: comparable(record) as SessionRecord })).sort((a, b) => a.key < b.key ? -1 : 1)
  check.same(sorted(listed), sorted(expected), `listUser: ${what}`)
}

/** Writes a record and answers the entry listUser should give for it. */
async function login (store: SessionStore, user: string | undefined, data: Record<string, unknown> = {}, lifetimeMs = LIVE_MS): Promise<UserSession> {
  const key = uniqueKey()
  const written = record(data, { user, lifetimeMs })
  await store.set(key, written, 0)
  return { key, record: written }
}

/** Rewrites a record (version + 1, live for long) with a user, or none. */
async function rewrite (store: SessionStore, { key, record: old }: UserSession, user: string | undefined): Promise<UserSession> {
  const moved = record(old.data, { version: old.version + 1, user })
  await store.set(key, moved, old.version)
  return { key, record: moved }
}

export const userIndex: Case[] = [
  {
    title: 'the per-user index is listUser and destroyUser together, or neither',
    async run ({ store, check }) {
      const listUser = typeof store.listUser === 'function'
      const destroyUser = typeof store.destroyUser === 'function'
      check.ok(listUser === destroyUser, `both methods or neither, got only ${listUser ? 'listUser' : 'destroyUser'}`)
    }
  },
  indexCase('listUser lists the live records of that user only, as { key, record }', async (store, { check }) => {
    const [ada, bob] = [uniqueKey(), uniqueKey()]
    const adas = [await login(store, ada, { n: 1 }), await login(store, ada, { n: 2 })]
    const bobs = [await login(store, bob)]
    await login(store, undefined)
    const destroyed = await login(store, ada)
    await store.destroy(destroyed.key)
    const movedToBob = await rewrite(store, await login(store, ada), bob)
    await rewrite(store, await login(store, ada), undefined)
    await expectListed(store, check, ada, adas, "ada's two records; not bob's, not one without a user, not a destroyed one, not ones moved away")
    await expectListed(store, check, bob, [...bobs, movedToBob], "bob's record and the one moved to bob")
    await expectListed(store, check, uniqueKey(), [], 'a user without records')
  }),
  indexCase('listUser returns objects the caller owns', async (store, { check }) => {
    const ada = uniqueKey()
    const entry = await login(store, ada, { nested: { list: [1] } })
    const expected = structuredClone(entry)
    const [listed] = await store.listUser(ada)
    ;(listed.record.data.nested as { list: unknown[] }).list.push(2)
    Object.assign(listed.record, { user: uniqueKey(), version: 9, expiresAt: 0 })
    listed.key = uniqueKey()
    check.same(comparable(await store.get(entry.key)), expected.record, 'get after changing what listUser returned')
    await expectListed(store, check, ada, [expected], 'after changing what an earlier listUser returned')
  }),
  indexCase("destroyUser removes exactly that user's records and resolves how many", async (store, { check }) => {
    const [ada, bob] = [uniqueKey(), uniqueKey()]
    const adas = [await login(store, ada), await login(store, ada)]
    const others = [await login(store, bob), await login(store, undefined), await rewrite(store, await login(store, ada), bob)]
    check.equal(await store.destroyUser(ada), adas.length, 'destroyUser of a user with two live records')
    for (const { key } of adas) check.equal(await store.get(key), undefined, 'get of a record of the destroyed user')
    for (const { key, record } of others) check.same(comparable(await store.get(key)), record, "get of another user's record, one without a user, or one moved away")
    await expectListed(store, check, ada, [], 'after destroyUser')
    check.equal(await store.destroyUser(ada), 0, 'destroyUser again')
    check.equal(await store.destroyUser(uniqueKey()), 0, 'destroyUser of a user without records')
  }),
  indexCase('an expired record leaves the index, a touched or rewritten one stays, and destroyUser spares a record created over an expired one', async (store, { check, clock }) => {
    const [ada, bob] = [uniqueKey(), uniqueKey()]
    const short = async (): Promise<UserSession> => login(store, ada, {}, clock.lifetimeMs)
    await short() // expires, and stays expired
    const [reused, rewritten, touched] = [await short(), await short(), await short()]
    const staying = [await login(store, ada), await rewrite(store, rewritten, ada)]
    if (store.touch !== undefined) {
      const later = Date.now() + LIVE_MS
      await store.touch(touched.key, later)
      staying.push({ key: touched.key, record: { ...touched.record, expiresAt: later } })
    }
    await clock.pass()
    const bobs = { key: reused.key, record: record({ bob: true }, { user: bob }) }
    check.equal(await store.set(bobs.key, bobs.record, 0), true, "set with expectedVersion 0 over an expired record of ada's, for bob")
    await expectListed(store, check, ada, staying, "ada's live records, touched and rewritten ones included; not expired ones")
    await expectListed(store, check, bob, [bobs], "bob's record created over an expired one of ada's")
    check.equal(await store.destroyUser(ada), staying.length, `destroyUser of a user with ${staying.length} live records and expired ones`)
    check.same(comparable(await store.get(bobs.key)), bobs.record, "get of bob's record after destroyUser of ada")
  }),
  indexCase(`${CONCURRENT_LOGINS} concurrent creates for one user, then destroyUser, leave none`, async (store, { check }) => {
    const ada = uniqueKey()
    const keys = Array.from({ length: CONCURRENT_LOGINS }, () => uniqueKey())
    const created = await Promise.all(keys.map((key, i) => store.set(key, record({ i }, { user: ada }), 0)))
    check.ok(created.every(Boolean), 'every create of a new key to resolve true')
    check.equal((await store.listUser(ada)).length, CONCURRENT_LOGINS, 'number of records listUser lists after the concurrent creates')
    check.equal(await store.destroyUser(ada), CONCURRENT_LOGINS, 'destroyUser after the concurrent creates')
    const left = (await Promise.all(keys.map((key) => store.get(key)))).filter((read) => read !== undefined)
    check.equal(left.length, 0, 'number of records left after destroyUser')
    await expectListed(store, check, ada, [], 'after destroyUser')
  }),
  indexCase('a record set after destroyUser is kept (a login right after a revocation)', async (store, { check }) => {
    const ada = uniqueKey()
    const revoked = await login(store, ada)
    await store.destroyUser(ada)
    const fresh = await login(store, ada, { fresh: true })
    check.same(comparable(await store.get(fresh.key)), fresh.record, 'get of a record created after destroyUser')
    const again = record({ again: true }, { user: ada })
    check.equal(await store.set(revoked.key, again, 0), true, 'set with expectedVersion 0 of a key destroyUser removed')
    await expectListed(store, check, ada, [fresh, { key: revoked.key, record: again }], 'the records created after destroyUser')
  })
]

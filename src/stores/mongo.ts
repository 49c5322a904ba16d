import type { Collection, Filter, IndexDescription, UpdateFilter } from 'mongodb'
import { parseJson } from '../json'
import { UnusableRecordError } from '../errors'
import type { SessionRecord, SessionStore, UserSession } from '../store'
import { bool, fail, knownKeys, methods, plainObject } from '../validate'

export interface MongoStoreOptions {
  /**
   * A collection of the official `mongodb` driver that you built and whose client you close:
   * `client.db('app').collection('sessions', { writeConcern: { w: 'majority' } })`.
   */
  // Any document type: the store writes and reads its own layout (MongoSessionDocument).
  collection: Collection<any>
  /** Create the TTL index on the expiry and the per-user index before the first operation. Default true. */
  createIndexes?: boolean
}

/** One session as the collection holds it. */
export interface MongoSessionDocument {
  /** The key: a digest of the session id, never the id. */
  _id: string
  /** The version, for compare-and-set. */
  v: number
  /** The data as JSON text: keys such as `$where` or `a.b` in it are no field names to MongoDB. */
  d: string
  /** Created. */
  c: Date
  /** Expires: a Date, so that the TTL index applies. */
  e: Date
  /** The user's digest, when the session has a user. */
  u?: string
}

// The TTL monitor deletes a document once `e` has passed; the partial index holds only
// documents with a user, for listUser and destroyUser.
const INDEXES: IndexDescription[] = [
  { key: { e: 1 }, name: 'e_1', expireAfterSeconds: 0 },
  { key: { u: 1 }, name: 'u_1', partialFilterExpression: { u: { $exists: true } } }
]
const DUPLICATE_KEY = 11000
// A secondary's copy may lag: a stale version read there would only cost conflicts, but a
// session written a moment ago could look missing.
const PRIMARY = { readPreference: 'primary' } as const
const NOT_IN_SESSION = "a session's lifetime is the plugin's idleTimeout and absoluteTimeout options (seconds)"
const PASS_COLLECTION = "pass a collection: client.db('app').collection('sessions')"

function validate (options: MongoStoreOptions): { collection: Collection<MongoSessionDocument>, createIndexes: boolean } {
  const given = plainObject('MongoStore options', options)
  knownKeys('MongoStore ', given, ['collection', 'createIndexes'], {
    client: PASS_COLLECTION,
    clientPromise: PASS_COLLECTION,
    mongoUrl: PASS_COLLECTION,
    dbName: PASS_COLLECTION,
    collectionName: PASS_COLLECTION,
    ttl: NOT_IN_SESSION,
    autoRemove: 'expired sessions are removed by the TTL index the store creates (createIndexes)',
    touchAfter: "the plugin moves a session's expiry at most once per tenth of its idleTimeout",
    crypto: "encrypt session data with the plugin's encryptAtRest option",
    writeOperationOptions: "set the write concern on the collection: db.collection('sessions', { writeConcern: { w: 'majority' } })"
  })
  if (given.collection === undefined) fail('MongoStore collection', `is required: ${PASS_COLLECTION}`)
  methods('MongoStore collection', given.collection, ['findOne', 'find', 'insertOne', 'updateOne', 'deleteOne', 'deleteMany', 'createIndexes'])
  return {
    collection: given.collection as Collection<MongoSessionDocument>,
    createIndexes: bool('MongoStore createIndexes', given.createIndexes, true)
  }
}

// The application's clock decides when a session ends, not the server's.
const now = (): Date => new Date(Date.now())
// A Date holds whole milliseconds; rounding up never ends a session early.
const dateOf = (ms: number): Date => new Date(Math.ceil(ms))

function documentOf (key: string, { data, version, createdAt, expiresAt, user }: SessionRecord): MongoSessionDocument {
  const doc: MongoSessionDocument = { _id: key, v: version, d: JSON.stringify(data), c: dateOf(createdAt), e: dateOf(expiresAt) }
  if (user !== undefined) doc.u = user
  return doc
}

/** The update writing `record` over a stored document: every field but the key. */
function replacementOf (key: string, record: SessionRecord): UpdateFilter<MongoSessionDocument> {
  const { _id, u, ...fields } = documentOf(key, record)
  return u === undefined ? { $set: fields, $unset: { u: '' } } : { $set: { ...fields, u } }
}

/**
 * Sessions in a MongoDB collection, one document per session. Every operation is one
 * command on one document: a create is an insert (a duplicate key is a conflict), a write an
 * update whose filter holds the expected version, so no transaction is needed.
 */
export class MongoStore implements SessionStore {
  #collection: Collection<MongoSessionDocument>
  #indexed: boolean
  #indexing: Promise<void> | undefined

  constructor (options: MongoStoreOptions) {
    const valid = validate(options)
    this.#collection = valid.collection
    this.#indexed = !valid.createIndexes
  }

  async get (key: string): Promise<SessionRecord | undefined> {
    const doc = await (await this.#ready()).findOne({ _id: key, e: { $gt: now() } }, PRIMARY)
    return doc === null ? undefined : recordOf(doc)
  }

  async set (key: string, record: SessionRecord, expectedVersion: number): Promise<boolean> {
    const collection = await this.#ready()
    if (expectedVersion === 0) return await this.#create(collection, key, record)
    const filter: Filter<MongoSessionDocument> = { _id: key, v: expectedVersion, e: { $gt: now() } }
    return (await collection.updateOne(filter, replacementOf(key, record))).matchedCount === 1
  }

  async destroy (key: string): Promise<void> {
    await (await this.#ready()).deleteOne({ _id: key })
  }

  async touch (key: string, expiresAt: number): Promise<boolean> {
    const { matchedCount } = await (await this.#ready()).updateOne({ _id: key, e: { $gt: now() } }, { $set: { e: dateOf(expiresAt) } })
    return matchedCount === 1
  }

  async listUser (user: string): Promise<UserSession[]> {
    const docs = await (await this.#ready()).find({ u: user, e: { $gt: now() } }, PRIMARY).toArray()
    const listed: UserSession[] = []
    for (const doc of docs) {
      // One unreadable document does not hide the others: a load of it replaces it.
      try {
        listed.push({ key: doc._id, record: recordOf(doc) })
      } catch {}
    }
    return listed
  }

  // Expired documents are missing already; the TTL monitor removes them.
  async destroyUser (user: string): Promise<number> {
    return (await (await this.#ready()).deleteMany({ u: user, e: { $gt: now() } })).deletedCount
  }

  // The key is taken: by a live session (a conflict), or by an expired one the TTL monitor has
  // not removed yet, which counts as missing and is taken over, unless it came back to life.
  async #create (collection: Collection<MongoSessionDocument>, key: string, record: SessionRecord): Promise<boolean> {
    try {
      await collection.insertOne(documentOf(key, record))
      return true
    } catch (err) {
      if ((err as { code?: unknown }).code !== DUPLICATE_KEY) throw err
    }
    return (await collection.updateOne({ _id: key, e: { $lte: now() } }, replacementOf(key, record))).matchedCount === 1
  }

  async #ready (): Promise<Collection<MongoSessionDocument>> {
    if (!this.#indexed) await this.#createIndexes()
    return this.#collection
  }

  // Once per store; concurrent first calls share the command, and a failed one rejects them
  // (the error reaches the requests and the log) and is tried again by the next call.
  // createIndexes is idempotent: the same indexes again change nothing.
  async #createIndexes (): Promise<void> {
    this.#indexing ??= this.#collection.createIndexes(INDEXES).then(() => {
      this.#indexed = true
    }).finally(() => {
      this.#indexing = undefined
    })
    await this.#indexing
  }
}

// A document holding something other than what this store wrote (edited by hand, another
// program's) is the document's fault, not the server's: the plugin replaces it.
function recordOf (doc: MongoSessionDocument): SessionRecord {
  const { v, d, c, e, u } = doc
  if (typeof d !== 'string' || !(c instanceof Date) || !(e instanceof Date)) throw new UnusableRecordError('it is not a document this store wrote')
  let data: Record<string, unknown>
  try {
    data = parseJson(d) as Record<string, unknown>
  } catch (err) {
    throw new UnusableRecordError(`its data is not JSON (${(err as Error).message})`)
  }
  const record: SessionRecord = { data, version: v, createdAt: c.getTime(), expiresAt: e.getTime() }
  if (u !== undefined) record.user = u
  return record
}

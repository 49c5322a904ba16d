'use strict'
// A small MongoDB server of our own on a free loopback port, for the MongoStore tests and
// benchmark: no real MongoDB can be installed here. It answers the driver's handshake and
// exactly the commands the store and connect-mongo send, with MongoDB's semantics for them
// (unique _id and error 11000, filters, update operators, n and nModified, TTL indexes), and
// "no such command" to anything else. One process, commands run one at a time: each is
// atomic, as a single-document write is in MongoDB. It can stop answering (pause), and be
// stopped and started again on the same port with its data, for the outage tests.
const { createServer } = require('node:net')
const { BSON } = require('mongodb')
const { frameLength, parseMessage, encodeReply } = require('./mongo-wire.cjs')
const { CommandError, badValue, equal, checkFilter, matches, checkUpdate, applyUpdate, upsertDocument } = require('./mongo-query.cjs')

const HOST = '127.0.0.1'
// What a MongoDB 7.0 standalone announces; the driver needs maxWireVersion 9 at least.
const HELLO = {
  isWritablePrimary: true,
  helloOk: true,
  maxBsonObjectSize: 16 * 1024 * 1024,
  maxMessageSizeBytes: 48_000_000,
  maxWriteBatchSize: 100_000,
  logicalSessionTimeoutMinutes: 30,
  minWireVersion: 0,
  maxWireVersion: 21,
  readOnly: false
}
const ID_INDEX = { v: 2, key: { _id: 1 }, name: '_id_' }

/** A collection: documents by the BSON of their _id, and the indexes beside _id's. */
function newCollection () {
  return { docs: new Map(), indexes: [] }
}

const idKey = (id) => Buffer.from(BSON.serialize({ id })).toString('hex')

class Storage {
  #collections = new Map()
  #now

  constructor (now) {
    this.#now = now
  }

  get (ns) {
    return this.#collections.get(ns)
  }

  ensure (ns) {
    let collection = this.#collections.get(ns)
    if (collection === undefined) this.#collections.set(ns, collection = newCollection())
    return collection
  }

  drop (ns) {
    this.#collections.delete(ns)
  }

  /** Deletes what the TTL indexes say has expired, as MongoDB's TTL monitor does each minute. */
  expire () {
    const now = this.#now()
    for (const { docs, indexes } of this.#collections.values()) {
      for (const index of indexes.filter((i) => i.expireAfterSeconds !== undefined)) {
        const [field] = Object.keys(index.key)
        for (const [key, doc] of docs) {
          if (doc[field] instanceof Date && doc[field].getTime() + index.expireAfterSeconds * 1000 <= now) docs.delete(key)
        }
      }
    }
  }
}

function duplicate (ns, doc, index) {
  return { index, code: 11000, errmsg: `E11000 duplicate key error collection: ${ns} index: _id_ dup key: { _id: ${JSON.stringify(doc._id)} }` }
}

function cursorReply (ns, docs) {
  return { cursor: { firstBatch: docs, id: BSON.Long.ZERO, ns }, ok: 1 }
}

const UNSUPPORTED_FIND = ['sort', 'skip', 'hint', 'min', 'max', 'collation']

const commands = {
  hello: (storage, command, session) => ({ ...HELLO, ...session.member, localTime: new Date(), connectionId: session.id, ok: 1 }),
  ping: () => ({ ok: 1 }),
  buildInfo: () => ({ version: '7.0.0', versionArray: [7, 0, 0, 0], ok: 1 }),
  endSessions: () => ({ ok: 1 }),

  insert (storage, { insert, documents, ordered = true }, { ns }) {
    const { docs } = storage.ensure(ns(insert))
    const writeErrors = []
    let n = 0
    for (const [i, doc] of documents.entries()) {
      if (!Object.hasOwn(doc, '_id')) doc._id = new BSON.ObjectId()
      const key = idKey(doc._id)
      if (docs.has(key)) {
        writeErrors.push(duplicate(ns(insert), doc, i))
        if (ordered) break
        continue
      }
      docs.set(key, doc)
      n++
    }
    return writeErrors.length === 0 ? { n, ok: 1 } : { n, writeErrors, ok: 1 }
  },

  find (storage, command, { ns }) {
    const unsupported = UNSUPPORTED_FIND.find((option) => command[option] !== undefined)
    if (unsupported !== undefined) throw badValue(`find with ${unsupported} is not supported by this test server`)
    if (command.projection !== undefined && Object.keys(command.projection).length > 0) throw badValue('projections are not supported by this test server')
    checkFilter(command.filter)
    const collection = storage.get(ns(command.find))
    const found = collection === undefined ? [] : [...collection.docs.values()].filter((doc) => matches(doc, command.filter))
    const limit = Math.abs(command.limit ?? 0)
    return cursorReply(ns(command.find), limit === 0 ? found : found.slice(0, limit))
  },

  update (storage, { update, updates, ordered = true }, { ns }) {
    const { docs } = storage.ensure(ns(update))
    const writeErrors = []
    const upserted = []
    let [n, nModified] = [0, 0]
    for (const [index, { q, u, upsert = false, multi = false }] of updates.entries()) {
      try {
        checkFilter(q)
        checkUpdate(u)
        const hits = [...docs.entries()].filter(([, doc]) => matches(doc, q))
        for (const [key, doc] of multi ? hits : hits.slice(0, 1)) {
          const next = applyUpdate(doc, u)
          n++
          if (!equal(next, doc)) nModified++
          docs.set(key, next)
        }
        if (hits.length > 0 || !upsert) continue
        const doc = upsertDocument(q, u, () => new BSON.ObjectId())
        if (docs.has(idKey(doc._id))) {
          writeErrors.push(duplicate(ns(update), doc, index))
          if (ordered) break
          continue
        }
        docs.set(idKey(doc._id), doc)
        upserted.push({ index, _id: doc._id })
        n++
      } catch (err) {
        if (!(err instanceof CommandError)) throw err
        writeErrors.push({ index, code: err.code, errmsg: err.message })
        if (ordered) break
      }
    }
    return { n, nModified, ...(upserted.length > 0 ? { upserted } : {}), ...(writeErrors.length > 0 ? { writeErrors } : {}), ok: 1 }
  },

  delete (storage, { delete: name, deletes }, { ns }) {
    const collection = storage.get(ns(name))
    let n = 0
    for (const { q } of deletes) checkFilter(q)
    for (const { q, limit } of deletes) {
      if (collection === undefined) break
      const hits = [...collection.docs.entries()].filter(([, doc]) => matches(doc, q))
      for (const [key] of limit === 1 ? hits.slice(0, 1) : hits) {
        collection.docs.delete(key)
        n++
      }
    }
    return { n, ok: 1 }
  },

  createIndexes (storage, { createIndexes: name, indexes }, { ns }) {
    const existed = storage.get(ns(name)) !== undefined
    const collection = storage.ensure(ns(name))
    const before = collection.indexes.length + 1
    for (const spec of indexes) addIndex(collection, spec)
    return { numIndexesBefore: before, numIndexesAfter: collection.indexes.length + 1, createdCollectionAutomatically: !existed, ok: 1 }
  },

  listIndexes (storage, { listIndexes: name }, { ns }) {
    const collection = storage.get(ns(name))
    if (collection === undefined) throw new CommandError(26, 'NamespaceNotFound', `ns does not exist: ${ns(name)}`)
    return cursorReply(ns(name), [ID_INDEX, ...collection.indexes])
  },

  drop (storage, { drop: name }, { ns }) {
    storage.drop(ns(name))
    return { ok: 1 }
  }
}
commands.isMaster = commands.hello
commands.ismaster = commands.hello
commands.buildinfo = commands.buildInfo

// background is accepted and has no effect, as in MongoDB 4.2 and later (connect-mongo sends it).
const INDEX_OPTIONS = ['expireAfterSeconds', 'partialFilterExpression', 'background']

// As MongoDB: the same index again is no change; the same name or key with other options is
// error 85. Options this server would not honour are refused rather than ignored.
function addIndex (collection, spec) {
  const { key, name, v, ...options } = spec
  const extra = Object.keys(options).find((option) => !INDEX_OPTIONS.includes(option))
  if (extra !== undefined) throw badValue(`the index option ${extra} is not supported by this test server`)
  if (options.expireAfterSeconds !== undefined && Object.keys(key).length !== 1) throw new CommandError(67, 'CannotCreateIndex', 'TTL indexes are single-field indexes, compound indexes do not support TTL')
  const index = { v: 2, key, name, ...options }
  const same = collection.indexes.find((i) => i.name === name || equal(i.key, key))
  if (same === undefined) collection.indexes.push(index)
  else if (!equal(same, index)) throw new CommandError(85, 'IndexOptionsConflict', `An existing index has the same name or key as the requested index but different options. Requested index: ${JSON.stringify(index)}, existing index: ${JSON.stringify(same)}`)
}

/** The server's answer to one command, `{ ok: 0, … }` for a failure. */
function answer (storage, command, session) {
  const name = Object.keys(command)[0]
  const run = Object.hasOwn(commands, name) ? commands[name] : undefined
  if (run === undefined) return { ok: 0, errmsg: `no such command: '${name}'`, code: 59, codeName: 'CommandNotFound' }
  const db = command.$db ?? 'admin'
  try {
    return run(storage, command, { ...session, ns: (collection) => `${db}.${collection}` })
  } catch (err) {
    if (!(err instanceof CommandError)) throw err
    return { ok: 0, errmsg: err.message, code: err.code, codeName: err.codeName }
  }
}

// What the primary of a one-member replica set adds to its hello, so that the driver sees a
// replica set and sends a read preference other than the primary's with each read.
function memberOf (replicaSet, port) {
  const me = `${HOST}:${port}`
  return { setName: replicaSet, setVersion: 1, electionId: new BSON.ObjectId('7fffffff0000000000000001'), hosts: [me], primary: me, me }
}

/**
 * Starts a server on `port` (default: one the system picks). `ttlPeriodMs` is how often
 * expired documents are deleted (0: only when `expire()` is called); `now` is its clock;
 * `replicaSet`, a set name, makes it announce itself as that set's only member, its primary.
 */
async function startMongoServer ({ port: wanted = 0, ttlPeriodMs = 100, now = () => new Date().getTime(), replicaSet } = {}) {
  const storage = new Storage(now)
  const sockets = new Set()
  const held = new Set()
  const received = []
  let paused = false
  let connections = 0

  // One connection: its socket and the bytes received but not yet answered.
  function drain (connection) {
    if (paused) {
      held.add(connection)
      return
    }
    for (let length = frameLength(connection.pending); length > 0; length = frameLength(connection.pending)) {
      const request = parseMessage(connection.pending.subarray(0, length))
      connection.pending = connection.pending.subarray(length)
      if (request === undefined) {
        connection.socket.destroy()
        return
      }
      received.push(Object.keys(request.command)[0])
      const reply = answer(storage, request.command, { id: connection.id, member })
      if (!request.silent) connection.socket.write(encodeReply(request, reply))
    }
  }

  function accept (socket) {
    const connection = { socket, id: ++connections, pending: Buffer.alloc(0) }
    sockets.add(socket)
    socket.on('close', () => { sockets.delete(socket); held.delete(connection) })
    socket.on('error', () => {})
    socket.on('data', (chunk) => {
      connection.pending = Buffer.concat([connection.pending, chunk])
      drain(connection)
    })
  }

  let server
  const listen = (port) => new Promise((resolve, reject) => {
    server = createServer(accept)
    server.once('error', reject)
    server.listen(port, HOST, () => resolve(server.address().port))
  })
  const close = () => new Promise((resolve) => {
    for (const socket of sockets) socket.destroy()
    server.close(() => resolve())
  })

  const port = await listen(wanted)
  const member = replicaSet === undefined ? {} : memberOf(replicaSet, port)
  const timer = ttlPeriodMs > 0 ? setInterval(() => storage.expire(), ttlPeriodMs).unref() : undefined
  return {
    port,
    url: `mongodb://${HOST}:${port}/?${replicaSet === undefined ? 'directConnection=true' : `replicaSet=${replicaSet}`}`,
    received,
    expire: () => storage.expire(),
    pause () { paused = true },
    resume () {
      paused = false
      for (const connection of [...held]) {
        held.delete(connection)
        drain(connection)
      }
    },
    stop: close,
    async restart () { await listen(port) },
    async close () {
      clearInterval(timer)
      await close()
    }
  }
}

module.exports = { startMongoServer }

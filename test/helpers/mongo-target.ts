// Where the MongoStore tests run, decided here and nowhere else: always on our own
// wire-protocol server (mongo-server.cjs), and also on a real MongoDB when MONGODB_URL names
// one. No MongoDB can be installed on these machines, so without MONGODB_URL the real run is
// skipped with a printed reason, even under CI: the one exception to "a missing server fails".
import { MongoClient, type Collection, type CommandStartedEvent, type Document, type MongoClientOptions } from 'mongodb'
import { freePort } from './free-port'
import { startMongoServer, type MongoServer, type MongoServerOptions } from './mongo-server.cjs'

export interface MongoTarget {
  /** Which server, for test names. */
  name: string
  url: string
  /** Our test server, for what only it allows (pause, stop, TTL on demand); undefined on a real MongoDB. */
  server?: MongoServer
  /** A client, closed when the target stops; `commands` collects what it sends. */
  client (options?: MongoClientOptions): MongoClient & { commands: CommandStartedEvent[] }
  /** A collection no other test uses, through `client` (default: one shared client). */
  collection (client?: MongoClient): Collection<Document>
  /** Closes the clients, drops the collections on a real server, stops our server. */
  stop (): Promise<void>
}

const DATABASE = 'fastify_sessions_test'
let sequence = 0

async function target (name: string, url: string, server?: MongoServer): Promise<MongoTarget> {
  const clients: MongoClient[] = []
  const names: string[] = []
  const client = (options: MongoClientOptions = {}): MongoClient & { commands: CommandStartedEvent[] } => {
    const created = Object.assign(new MongoClient(url, { monitorCommands: true, ...options }), { commands: [] as CommandStartedEvent[] })
    created.on('commandStarted', (event) => created.commands.push(event))
    clients.push(created)
    return created
  }
  const shared = client()
  return {
    name,
    url,
    server,
    client,
    collection (owner = shared) {
      const collection = `s${process.pid}_${sequence++}`
      names.push(collection)
      return owner.db(DATABASE).collection(collection)
    },
    async stop () {
      // Our server forgets everything when it stops; a real one keeps what the tests left.
      if (server === undefined) await Promise.all(names.map((n) => shared.db(DATABASE).collection(n).drop().catch(() => {})))
      await Promise.all(clients.map((c) => c.close()))
      await server?.close()
    }
  }
}

/** Our wire-protocol server on a free port; `options` as startMongoServer's. */
export async function helperTarget (options: MongoServerOptions = {}): Promise<MongoTarget> {
  const server = await startMongoServer({ port: await freePort(), ...options })
  return await target('the test server', server.url, server)
}

export const REAL_SERVER_SKIPPED = 'MONGODB_URL is not set, and no MongoDB can be installed on this machine'

/**
 * The targets every MongoStore test file runs on: `run(name, start)` is called for each.
 * Without MONGODB_URL the real-server run is a skipped test carrying the reason, so that
 * every reporter prints it and counts it as a skip, under CI=true too.
 */
export function mongoTargets (t: tap.Test, run: (name: string, start: () => Promise<MongoTarget>) => void): void {
  run('the test server', () => helperTarget())
  const url = process.env.MONGODB_URL
  if (url === undefined || url === '') {
    t.test('the same tests on a real MongoDB', { skip: REAL_SERVER_SKIPPED }, async () => {})
    return
  }
  run('MongoDB at MONGODB_URL', () => target('MongoDB at MONGODB_URL', url))
}

/**
 * A command as sent, without the driver's bookkeeping (session, cluster time, retry number,
 * and the primaryPreferred a direct connection to a replica-set member puts on reads meant
 * for the primary; mongo.test.ts checks the read preference on its own).
 */
export function sentCommand (event: CommandStartedEvent): Document {
  const { lsid, $db, $clusterTime, txnNumber, $readPreference, ...command } = event.command
  // The driver passes index keys as Maps: compared as the plain documents they encode.
  return JSON.parse(JSON.stringify(command, (_key, value: unknown) => value instanceof Map ? Object.fromEntries(value) : value))
}

// Types of mongo-server.cjs, the MongoDB wire-protocol test server (plain JavaScript so that
// the benchmark can start the same server the tests use).

export interface MongoServerOptions {
  /** Port to listen on; default one the system picks. */
  port?: number
  /** How often expired documents are deleted, in ms; 0 only when expire() is called. Default 100. */
  ttlPeriodMs?: number
  /** The server's clock, epoch ms. Default the real time (not a faked Date.now). */
  now?: () => number
  /** A replica set name: the server announces itself as the set's only member, its primary. Default none: a standalone. */
  replicaSet?: string
}

export interface MongoServer {
  readonly port: number
  /** A connection string for the driver (`directConnection=true`, or `replicaSet=` the set's name). */
  readonly url: string
  /** The name of every command received, handshakes included, in order. */
  readonly received: string[]
  /** Deletes the documents the TTL indexes say have expired, now. */
  expire (): void
  /** Stops answering: commands wait, unanswered, until resume(). */
  pause (): void
  resume (): void
  /** Closes every connection and stops listening; the data stays. */
  stop (): Promise<void>
  /** Listens again on the same port, with the same data. */
  restart (): Promise<void>
  close (): Promise<void>
}

export function startMongoServer (options?: MongoServerOptions): Promise<MongoServer>

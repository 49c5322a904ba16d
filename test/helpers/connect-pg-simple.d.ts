// connect-pg-simple ships no types: what the tests use of it.
declare module 'connect-pg-simple' {
  import type session from 'express-session'
  import type { Pool } from 'pg'

  interface PGStoreOptions {
    pool?: Pool
    tableName?: string
    schemaName?: string
    createTableIfMissing?: boolean
    pruneSessionInterval?: false | number
    ttl?: number
    errorLog?: (...args: unknown[]) => void
  }

  class PGStore extends session.Store {
    constructor (options?: PGStoreOptions)
    get (sid: string, callback: (err: any, session?: session.SessionData | null) => void): void
    set (sid: string, session: session.SessionData, callback?: (err?: any) => void): void
    destroy (sid: string, callback?: (err?: any) => void): void
    close (): Promise<void>
  }

  function connectPgSimple (session: typeof import('express-session')): typeof PGStore
  export = connectPgSimple
}

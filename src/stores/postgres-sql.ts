import { fail } from '../validate'

// The SQL of PostgresStore, built once per store from its validated table name. Every
// statement compares expiries with a parameter holding the application's Date.now(), never
// with the server's now(): the application's clock decides when a session ends.

export interface Statements {
  get: string
  insert: string
  update: string
  touch: string
  destroy: string
  listUser: string
  destroyUser: string
  prune: string
  createTable: string
}

// Lower case only, so the name means the same table quoted or not in the user's own SQL;
// 48 characters leave room for the index names' suffixes within PostgreSQL's 63.
const IDENTIFIER = /^[a-z_][a-z0-9_]{0,47}$/

/** The table's `[schema, name]`, refusing anything that is not a plain identifier. */
export function tableName (value: unknown): [string | undefined, string] {
  if (typeof value !== 'string') fail('PostgresStore table', 'must be a string')
  const parts = value.split('.')
  if (parts.length > 2 || !parts.every((part) => IDENTIFIER.test(part))) {
    fail('PostgresStore table', "must be a lower-case identifier of at most 48 characters (letters, digits, _), optionally 'schema.table'")
  }
  return parts.length === 2 ? [parts[0], parts[1]] : [undefined, parts[0]]
}

const COLUMNS = 'version, data, created_at, expires_at, user_digest'

/** The statements for one table; `schema` and `name` come from tableName(). */
export function statements (schema: string | undefined, name: string): Statements {
  const table = schema === undefined ? `"${name}"` : `"${schema}"."${name}"`
  const lockName = `fastify-sessions ${schema ?? ''}.${name}`
  return {
    get: `SELECT ${COLUMNS} FROM ${table} WHERE key = $1 AND expires_at > $2`,
    // A row that has expired but was not pruned yet counts as missing: the insert takes it over.
    insert: `INSERT INTO ${table} AS old (key, ${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)
      ON CONFLICT (key) DO UPDATE SET version = EXCLUDED.version, data = EXCLUDED.data,
        created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at, user_digest = EXCLUDED.user_digest
      WHERE old.expires_at <= $7`,
    // Under READ COMMITTED a concurrent UPDATE of the row waits for the first one and then
    // re-checks this WHERE against the new row, so one version is never written twice.
    update: `UPDATE ${table} SET version = $2, data = $3, created_at = $4, expires_at = $5, user_digest = $6
      WHERE key = $1 AND version = $7 AND expires_at > $8`,
    touch: `UPDATE ${table} SET expires_at = $2 WHERE key = $1 AND expires_at > $3`,
    destroy: `DELETE FROM ${table} WHERE key = $1`,
    listUser: `SELECT key, ${COLUMNS} FROM ${table} WHERE user_digest = $1 AND expires_at > $2`,
    destroyUser: `WITH gone AS (DELETE FROM ${table} WHERE user_digest = $1 RETURNING expires_at)
      SELECT count(*) FILTER (WHERE expires_at > $2) AS ended FROM gone`,
    // A session-level advisory lock would have to be released on the connection that took
    // it, which a pool does not promise; this one lasts as long as the statement. The
    // uncorrelated sub-select runs once, before any row is read.
    prune: `DELETE FROM ${table} WHERE key IN (
      SELECT key FROM ${table}
      WHERE expires_at <= $1 AND (SELECT pg_try_advisory_xact_lock(hashtext('${lockName} prune')))
      ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)`,
    createTable: createTableSql(table, name, lockName)
  }
}

/** The table and its indexes, as the README prints them for migrations. */
export function tableSql (table: string, name: string): string {
  return `CREATE TABLE IF NOT EXISTS ${table} (
  key text PRIMARY KEY,
  version integer NOT NULL,
  data text NOT NULL,
  created_at bigint NOT NULL,
  expires_at bigint NOT NULL,
  user_digest text
);
CREATE INDEX IF NOT EXISTS "${name}_expires_at_idx" ON ${table} (expires_at);
CREATE INDEX IF NOT EXISTS "${name}_user_digest_idx" ON ${table} (user_digest) WHERE user_digest IS NOT NULL;`
}

// Two processes running CREATE TABLE IF NOT EXISTS at once can both pass the check and one
// then fails on the catalog's unique index: the DDL runs under a transaction-level advisory
// lock. One DO statement is one transaction on any driver and any protocol, and leaves no
// transaction open on a pooled connection when it fails.
function createTableSql (table: string, name: string, lockName: string): string {
  return `DO $$ BEGIN
PERFORM pg_advisory_xact_lock(hashtext('${lockName} ddl'));
${tableSql(table, name)}
END $$`
}

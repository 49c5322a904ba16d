import { createHash } from 'node:crypto'

// The Lua scripts of RedisStore. A record is one hash (v: version, c: createdAt,
// e: expiresAt, d: data, u: user), so every record operation touches one key. A hash
// rather than one JSON string lets the scripts read the version and move the expiry
// without decoding or rewriting the data, however large it is.
//
// The per-user index is one sorted set per user: member = the record's key (without the
// prefix), score = an expiry at or after the record's. Arguments named `sets` carry the
// prefix of those sets for a script that may reach keys it was not given (standalone and
// Sentinel); on a Cluster they are '' and the store does that part as a step of its own.

export interface Script {
  lua: string
  sha: string
}

function script (lua: string): Script {
  return { lua, sha: createHash('sha1').update(lua).digest('hex') }
}

// Scripts are not rolled back on error, so the expiry is checked before anything is
// written: a failing PEXPIREAT after the HSET would leave a record that never expires.
function checkExpiry (arg: number): string {
  return `if not string.match(ARGV[${arg}], '^%d+$') then
  return redis.error_reply('ERR expiresAt must be whole epoch milliseconds')
end
`
}

// Files `member` under `set`, drops the entries whose expiry `now` has passed, and keeps
// the set's own expiry at its greatest score: a set never outlives its last record, and
// never lives without an expiry. With `raise` (a Cluster's step before the record's own) a
// score never goes down, since the record keeps its expiry if its write fails, and always
// goes up, by a microsecond at least, so that UNFILE can tell a member filed again.
const FILE_FUNCTION = `
local function file (set, score, member, now, raise)
  if raise then
    local old = tonumber(redis.call('ZSCORE', set, member) or '-1')
    if old >= tonumber(score) then score = old + 0.001 end
  end
  redis.call('ZADD', set, score, member)
  redis.call('ZREMRANGEBYSCORE', set, '-inf', now)
  local top = redis.call('ZRANGE', set, -1, -1, 'WITHSCORES')[2]
  if top then redis.call('PEXPIREAT', set, string.format('%.0f', math.ceil(tonumber(top)))) end
end
`

// KEYS: record[, user set]. ARGV: expected, version, createdAt, expiresAt, data, sets,
// member[, user, now]. HGET answers false for a missing key, which reads as version 0.
// A record that changes user leaves the old user's set here when `sets` allows it.
export const COMPARE_AND_SET = script(FILE_FUNCTION + checkExpiry(4) + `
if (redis.call('HGET', KEYS[1], 'v') or '0') ~= ARGV[1] then return 0 end
local user = ARGV[8] or ''
local old = redis.call('HGET', KEYS[1], 'u')
if old and old ~= user then
  if ARGV[6] ~= '' then redis.call('ZREM', ARGV[6] .. old, ARGV[7]) end
  if user == '' then redis.call('HDEL', KEYS[1], 'u') end
end
if user == '' then
  redis.call('HSET', KEYS[1], 'v', ARGV[2], 'c', ARGV[3], 'e', ARGV[4], 'd', ARGV[5])
else
  redis.call('HSET', KEYS[1], 'v', ARGV[2], 'c', ARGV[3], 'e', ARGV[4], 'd', ARGV[5], 'u', user)
end
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
if KEYS[2] then file(KEYS[2], ARGV[4], ARGV[7], ARGV[9], false) end
return 1`)

// KEYS: record. ARGV: expiresAt, sets, member, now, the user already filed (Cluster).
// EXISTS comes first: a PEXPIREAT in the past deletes the key, and a HSET after it would
// bring back a record without data. On a Cluster a record with a user is not touched
// until its entry covers the new expiry: the script answers the user instead.
export const TOUCH = script(FILE_FUNCTION + checkExpiry(1) + `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local user = redis.call('HGET', KEYS[1], 'u')
if user and ARGV[2] == '' and user ~= ARGV[5] then return user end
redis.call('HSET', KEYS[1], 'e', ARGV[1])
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
if user and ARGV[2] ~= '' then file(ARGV[2] .. user, ARGV[1], ARGV[3], ARGV[4], false) end
return 1`)

// KEYS: record. ARGV: sets, member. Answers the user and the expiry of a record whose
// entry is left to remove (Cluster).
export const DESTROY = script(`
local row = redis.call('HMGET', KEYS[1], 'u', 'e')
redis.call('DEL', KEYS[1])
if not row[1] then return false end
if ARGV[1] == '' then return row end
redis.call('ZREM', ARGV[1] .. row[1], ARGV[2])
return false`)

// KEYS: user set. ARGV: expiresAt, member, now. The Cluster's first step of a write.
export const FILE = script(FILE_FUNCTION + checkExpiry(1) + `
file(KEYS[1], ARGV[1], ARGV[2], ARGV[3], true)
return 1`)

// KEYS: user set. ARGV: member, expiry, member, expiry... Removes the entries of records
// the store deleted, each unless it was filed again since (its score rose past the expiry
// the deleted record had): a write may have created the record anew meanwhile.
export const UNFILE = script(`
for i = 1, #ARGV, 2 do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) <= tonumber(ARGV[i + 1]) then redis.call('ZREM', KEYS[1], ARGV[i]) end
end
return 1`)

// KEYS: user set. ARGV: now. The members whose expiry has not passed.
export const MEMBERS = script(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
return redis.call('ZRANGE', KEYS[1], 0, -1)`)

// KEYS: record. ARGV: user. Deletes the record only while it belongs to the user, and
// answers the expiry it had.
export const DESTROY_IF_USER = script(`
local row = redis.call('HMGET', KEYS[1], 'u', 'e')
if row[1] ~= ARGV[1] then return false end
redis.call('DEL', KEYS[1])
return row[2]`)

// KEYS: user set. ARGV: now, prefix, user. Standalone: each member and its record's
// v, c, e, d, u; entries whose record is gone or belongs to another user are removed.
export const LIST_USER = script(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local listed = {}
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local row = redis.call('HMGET', ARGV[2] .. member, 'v', 'c', 'e', 'd', 'u')
  if row[4] and row[5] == ARGV[3] then
    for _, value in ipairs({ member, row[1], row[2], row[3], row[4], row[5] }) do listed[#listed + 1] = value end
  else
    redis.call('ZREM', KEYS[1], member)
  end
end
return listed`)

// KEYS: user set. ARGV: now, prefix, user. Standalone: deletes the user's records and the
// set in one step, so nothing filed before it can survive it.
export const DESTROY_USER = script(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local ended = 0
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local key = ARGV[2] .. member
  if redis.call('HGET', key, 'u') == ARGV[3] then ended = ended + redis.call('DEL', key) end
end
redis.call('DEL', KEYS[1])
return ended`)

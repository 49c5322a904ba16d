'use strict'
// Filters and update documents for the test server in mongo-server.cjs: only the operators
// MongoStore and the benchmark's connect-mongo send, with MongoDB's meaning. Anything else
// is refused with the server's own error, so a store cannot come to depend on it unnoticed.
const { BSON } = require('mongodb')

class CommandError extends Error {
  constructor (code, codeName, message) {
    super(message)
    this.code = code
    this.codeName = codeName
  }
}

const badValue = (message) => new CommandError(2, 'BadValue', message)

/** Same BSON value: what MongoDB's equality compares (numbers of any width compare as numbers). */
function equal (a, b) {
  if (typeof a === 'number' && typeof b === 'number') return a === b
  return Buffer.from(BSON.serialize({ v: a })).equals(Buffer.from(BSON.serialize({ v: b })))
}

// -1, 0, 1, or undefined when the two are of different types: MongoDB's range operators match
// only within one type ("type bracketing"), so a Date is never $gt a number.
function compare (a, b) {
  if (a instanceof Date && b instanceof Date) return Math.sign(a.getTime() - b.getTime())
  if (typeof a === 'number' && typeof b === 'number') return Math.sign(a - b)
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0
  return undefined
}

const RANGE = {
  $gt: (order) => order === 1,
  $lte: (order) => order === -1 || order === 0
}

function isOperators (condition) {
  return condition !== null && typeof condition === 'object' && !(condition instanceof Date) &&
    Object.keys(condition).length > 0 && Object.keys(condition).every((key) => key.startsWith('$'))
}

const OPERATORS = ['$exists', ...Object.keys(RANGE)]

function checkField (field, condition) {
  if (field.includes('.')) throw badValue(`dotted paths are not supported by this test server: ${field}`)
  if (!isOperators(condition)) return
  const unknown = Object.keys(condition).find((operator) => !OPERATORS.includes(operator))
  if (unknown !== undefined) throw badValue(`unknown operator: ${unknown}`)
}

/** Refuses a filter this server cannot evaluate, before any document is looked at (as MongoDB parses first). */
function checkFilter (filter) {
  for (const [field, condition] of Object.entries(filter ?? {})) {
    if (field === '$or') condition.forEach(checkFilter)
    else if (field.startsWith('$')) throw badValue(`unknown top level operator: ${field}`)
    else checkField(field, condition)
  }
}

function fieldMatches (doc, field, condition) {
  const present = Object.hasOwn(doc, field)
  const value = doc[field]
  if (!isOperators(condition)) return present && equal(value, condition)
  return Object.entries(condition).every(([operator, operand]) => {
    if (operator === '$exists') return present === Boolean(operand)
    return present && RANGE[operator](compare(value, operand))
  })
}

/** Whether `doc` matches `filter` (checked by checkFilter): top-level fields, the operators above, and $or. */
function matches (doc, filter) {
  return Object.entries(filter ?? {}).every(([field, condition]) => {
    if (field === '$or') return condition.some((branch) => matches(doc, branch))
    return fieldMatches(doc, field, condition)
  })
}

const IMMUTABLE_ID = new CommandError(66, 'ImmutableField', "Performing an update on the path '_id' would modify the immutable field '_id'")

function setField (doc, field, value) {
  if (field.includes('.')) throw badValue(`dotted paths are not supported by this test server: ${field}`)
  if (field === '_id' && !equal(doc._id, value)) throw IMMUTABLE_ID
  doc[field] = value
}

const MODIFIERS = {
  $set: (doc, field, value) => setField(doc, field, value),
  $unset: (doc, field) => { delete doc[field] }
}

/** Refuses an update this server cannot apply, before any document is looked at. */
function checkUpdate (update) {
  if (Array.isArray(update)) throw badValue('update pipelines are not supported by this test server')
  if (!Object.keys(update).every((key) => key.startsWith('$'))) throw badValue('replacement updates are not supported by this test server')
  const unknown = Object.keys(update).find((modifier) => !Object.hasOwn(MODIFIERS, modifier))
  if (unknown !== undefined) throw new CommandError(9, 'FailedToParse', `Unknown modifier: ${unknown}. Expected a valid update modifier or pipeline-style update specified as an array`)
}

/** `doc` changed by the update operators of `update` (checked by checkUpdate), as a new object. */
function applyUpdate (doc, update) {
  const next = { ...doc }
  for (const [modifier, fields] of Object.entries(update)) {
    for (const [field, value] of Object.entries(fields)) MODIFIERS[modifier](next, field, value)
  }
  return next
}

/** The document an upsert inserts: the filter's equality fields, then the update. */
function upsertDocument (filter, update, newId) {
  const seed = {}
  for (const [field, condition] of Object.entries(filter ?? {})) {
    if (field.startsWith('$')) continue
    if (!isOperators(condition)) seed[field] = condition
  }
  const doc = applyUpdate(seed, update)
  return Object.hasOwn(doc, '_id') ? doc : { _id: newId(), ...doc }
}

module.exports = { CommandError, badValue, equal, checkFilter, matches, checkUpdate, applyUpdate, upsertDocument }

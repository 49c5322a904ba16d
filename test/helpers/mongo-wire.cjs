'use strict'
// The framing of MongoDB's wire protocol, for the test server in mongo-server.cjs: OP_MSG
// (every command of a current driver) and the legacy OP_QUERY, which the driver still uses
// for the first hello of each connection when no serverApi is set. BSON is the driver's own.
const { BSON } = require('mongodb')

const OP_REPLY = 1
const OP_QUERY = 2004
const OP_MSG = 2013
const CHECKSUM_PRESENT = 1
const MORE_TO_COME = 2
const HEADER_BYTES = 16

/** The length of the first whole message in `buffer`, or 0 while it is incomplete. */
function frameLength (buffer) {
  if (buffer.length < 4) return 0
  const length = buffer.readInt32LE(0)
  return buffer.length >= length ? length : 0
}

function cstringEnd (buffer, at) {
  return buffer.indexOf(0, at)
}

function readDocument (buffer, at) {
  const size = buffer.readInt32LE(at)
  return { doc: BSON.deserialize(buffer.subarray(at, at + size)), end: at + size }
}

// Kind 0 is the command; each kind 1 section is a document sequence the command names
// (`documents` of an insert, `updates`, `deletes`), put back into the command.
function parseMsg (frame) {
  const flags = frame.readUInt32LE(HEADER_BYTES)
  const end = frame.length - (flags & CHECKSUM_PRESENT ? 4 : 0)
  let command
  const sequences = []
  for (let at = HEADER_BYTES + 4; at < end;) {
    const kind = frame[at++]
    if (kind === 0) {
      const read = readDocument(frame, at)
      command = read.doc
      at = read.end
      continue
    }
    const sectionEnd = at + frame.readInt32LE(at)
    const nameEnd = cstringEnd(frame, at + 4)
    const docs = []
    for (let next = nameEnd + 1; next < sectionEnd;) {
      const read = readDocument(frame, next)
      docs.push(read.doc)
      next = read.end
    }
    sequences.push([frame.toString('utf8', at + 4, nameEnd), docs])
    at = sectionEnd
  }
  for (const [name, docs] of sequences) command[name] = docs
  return { command, silent: (flags & MORE_TO_COME) !== 0 }
}

function parseQuery (frame) {
  const nameEnd = cstringEnd(frame, HEADER_BYTES + 4)
  const { doc } = readDocument(frame, nameEnd + 1 + 8)
  return { command: doc.$query ?? doc, silent: false }
}

/** The command a message carries, or undefined for an opcode this server does not speak. */
function parseMessage (frame) {
  const opCode = frame.readInt32LE(12)
  const requestId = frame.readInt32LE(4)
  if (opCode === OP_MSG) return { opCode, requestId, ...parseMsg(frame) }
  if (opCode === OP_QUERY) return { opCode, requestId, ...parseQuery(frame) }
  return undefined
}

let nextResponseId = 1

function header (length, responseTo, opCode) {
  const head = Buffer.alloc(HEADER_BYTES)
  head.writeInt32LE(length, 0)
  head.writeInt32LE(nextResponseId++ & 0x7fffffff, 4)
  head.writeInt32LE(responseTo, 8)
  head.writeInt32LE(opCode, 12)
  return head
}

/** The reply to a request, in the request's own protocol: OP_MSG, or OP_REPLY to an OP_QUERY. */
function encodeReply (request, reply) {
  const body = Buffer.from(BSON.serialize(reply))
  if (request.opCode === OP_QUERY) {
    // responseFlags, cursorID (8 bytes), startingFrom, numberReturned
    const fields = Buffer.alloc(20)
    fields.writeInt32LE(1, 16)
    const length = HEADER_BYTES + fields.length + body.length
    return Buffer.concat([header(length, request.requestId, OP_REPLY), fields, body])
  }
  const sections = Buffer.alloc(5) // flagBits 0, then section kind 0
  const length = HEADER_BYTES + sections.length + body.length
  return Buffer.concat([header(length, request.requestId, OP_MSG), sections, body])
}

module.exports = { frameLength, parseMessage, encodeReply }

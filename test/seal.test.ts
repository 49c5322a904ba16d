import t from 'tap'
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { transferableSymbol, valueSymbol } from 'piscina'
import { gcmCode, MAX_BYTES } from '../src/crypto/gcm-code'
import { GcmKey, MAX_PREFIX } from '../src/crypto/gcm-key'
import { formatKeyId, KeyRing } from '../src/crypto/key-ring'
import { FORMAT_VERSION, SEAL_OVERHEAD, seal, sealedLength, unseal, type Unsealed } from '../src/crypto/seal'
import { createHandler } from '../src/crypto/worker'

const OLD = 'old-secret-old-secret-old-secret-0123'
const NEW = 'new-secret-new-secret-new-secret-4567'
const ring = new KeyRing(NEW)
const record = JSON.stringify({ id: 'abc', createdAt: 1, data: { user: 'ada', note: 'ünïcødé ✓ 🎉' } })

function reasonOf (result: Unsealed): string {
  return result.ok ? 'opened' : result.reason
}

// Decodes, changes the bytes, and re-encodes canonically, so only the content is wrong.
function tamper (sealed: string, change: (bytes: Buffer) => Buffer): string {
  return change(Buffer.from(sealed, 'base64url')).toString('base64url')
}

t.test('round trip of a string and of a Buffer', async (t) => {
  const opened = unseal(ring, 'sid', seal(ring, 'sid', record))
  t.ok(opened.ok)
  if (!opened.ok) return
  t.equal(opened.plaintext.toString(), record)
  t.equal(opened.current, true)
  t.equal(opened.keyId, ring.keyIds[0])
  const fromBuffer = unseal(ring, 'sid', seal(ring, 'sid', Buffer.from(record)))
  t.equal(fromBuffer.ok && fromBuffer.plaintext.toString(), record)
  const view = new Uint8Array(Buffer.from('xx' + record).buffer, 0, 0)
  t.equal(reasonOf(unseal(ring, 'sid', seal(ring, 'sid', view))), 'opened', 'empty plaintext')
})

t.test('output is cookie-safe base64url of the documented length, with a fresh IV each time', async (t) => {
  const a = seal(ring, 'sid', record)
  const b = seal(ring, 'sid', record)
  t.match(a, /^[A-Za-z0-9_-]+$/)
  t.equal(a.length, sealedLength(Buffer.byteLength(record)))
  t.equal(Buffer.from(a, 'base64url').length, Buffer.byteLength(record) + SEAL_OVERHEAD)
  t.not(a, b)
  const header = Buffer.from(a, 'base64url')
  t.equal(header[0], FORMAT_VERSION)
  t.equal(formatKeyId(header.readUInt32BE(1)), ring.keyIds[0], 'key id in the clear header')
})

// The sealed layout: version | key id | IV | ciphertext | tag; the AAD: version | key id | context.
function nodeOpen (key: Uint8Array, sealed: string, context: string): string | undefined {
  const bytes = Buffer.from(sealed, 'base64url')
  const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(5, 17), { authTagLength: 16 })
  decipher.setAAD(Buffer.concat([bytes.subarray(0, 5), Buffer.from(context)]))
  decipher.setAuthTag(bytes.subarray(bytes.length - 16))
  const plaintext = decipher.update(bytes.subarray(17, bytes.length - 16))
  try {
    decipher.final()
    return plaintext.toString()
  } catch {
    return undefined
  }
}

t.test('values are AES-256-GCM byte for byte: node:crypto opens what seal() makes, and seal() opens what node:crypto makes', async (t) => {
  const key = ring.material().keys[0].key
  let mismatches = 0
  // Lengths across block edges and past the 256 bytes whose keystream is made ahead.
  for (let length = 0; length < 600; length += 7) {
    const text = 'ü'.repeat(length >> 1) + 'x'.repeat(length & 1)
    const sealed = seal(ring, 'sid', text)
    if (nodeOpen(key, sealed, 'sid') !== text) mismatches++
    if (nodeOpen(key, sealed, 'sie') !== undefined) mismatches++
    const header = Buffer.from(sealed, 'base64url').subarray(0, 5)
    const iv = randomBytes(12)
    const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: 16 })
    cipher.setAAD(Buffer.concat([header, Buffer.from('sid')]))
    const body = Buffer.concat([cipher.update(text), cipher.final()])
    const theirs = Buffer.concat([header, iv, body, cipher.getAuthTag()]).toString('base64url')
    const opened = unseal(ring, 'sid', theirs)
    if (!opened.ok || opened.plaintext.toString() !== text) mismatches++
  }
  t.equal(mismatches, 0)
})

t.test('each seal is authenticated with its own context, however contexts and lengths alternate', async (t) => {
  const key = ring.material().keys[0].key
  const opened: Array<string | undefined> = []
  const expected: string[] = []
  for (const [i, context] of ['sid', 'other', 'sid', 's', 'a-much-longer-cookie-name-than-usual', 'sid'].entries()) {
    const text = 'v'.repeat(i * 5)
    opened.push(nodeOpen(key, seal(ring, context, text), context))
    expected.push(text)
  }
  t.same(opened, expected)
})

t.test('a value sealed by the previous implementation (a node:crypto cipher object per value) still opens', async (t) => {
  const previous = 'Aaolz-UsSwDRP8qFDBqk9o1p80Lswr65-NEDuchP0_E57rXCnGGjGe3cAfYVBCQEAQ0wBNJOGmhI_x1uO81E1NrahgR7LupedSGU5CY6fAerz2mUVpaLWqdCA961DqesMVe1aTp7Rh5yq_K5TelA'
  const opened = unseal(ring, 'sid', previous)
  t.equal(opened.ok && opened.plaintext.toString(), record)
  t.equal(opened.ok && opened.current, true)
})

// What node:crypto makes of the same inputs under the nonce GcmKey drew.
function nodeSeal (raw: Buffer, prefix: Buffer, aad: Buffer, plaintext: Buffer, sealed: string): string {
  const nonce = Buffer.from(sealed, 'base64url').subarray(prefix.length, prefix.length + 12)
  const cipher = createCipheriv('aes-256-gcm', raw, nonce, { authTagLength: 16 })
  cipher.setAAD(aad)
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()])
  return Buffer.concat([prefix, nonce, body, cipher.getAuthTag()]).toString('base64url')
}

t.test('GcmKey seals byte for byte as node:crypto on every path, with or without WebAssembly', async (t) => {
  const raw = randomBytes(32)
  const header = randomBytes(5)
  const aad = Buffer.concat([header, Buffer.from('sid')])
  // Block edges, the 256 bytes a batch slot covers, the longest value sealed in WebAssembly
  // and one more (OpenSSL), a header and authenticated data too long for it (OpenSSL too).
  const cases: Array<[Buffer, Buffer, number]> = [0, 1, 15, 16, 17, 255, 256, 257, 1000, MAX_BYTES, MAX_BYTES + 1]
    .map((length) => [header, aad, length])
  cases.push([randomBytes(MAX_PREFIX + 1), aad, 40], [header, randomBytes(MAX_BYTES + 1), 40], [header, aad, 40])
  for (const [name, key] of [['WebAssembly', new GcmKey(raw)], ['OpenSSL only', new GcmKey(raw, () => undefined)]] as const) {
    let mismatches = 0
    // Twice round, past a batch of nonces, so that the hashed authenticated data is reused.
    for (let round = 0; round < 6; round++) {
      for (const [prefix, data, length] of cases) {
        const plaintext = randomBytes(length)
        const sealed = key.seal(prefix, data, plaintext)
        if (sealed !== nodeSeal(raw, prefix, data, plaintext, sealed)) mismatches++
      }
    }
    t.equal(mismatches, 0, name)
  }
})

t.test('a key makes its WebAssembly instance on its first seal, once, and never for opening', async (t) => {
  let made = 0
  const key = new GcmKey(randomBytes(32), () => { made++; return gcmCode() })
  const header = randomBytes(5)
  key.open(randomBytes(12), header, randomBytes(40))
  t.equal(made, 0, 'opening makes none')
  for (let i = 0; i < 3; i++) key.seal(header, header, randomBytes(20))
  t.equal(made, 1)
})

t.test('without WebAssembly, or when an instance cannot be made, there is no code and sealing goes to OpenSSL', async (t) => {
  t.equal(gcmCode(null), undefined)
  const failing = { Module: class { constructor () { throw new RangeError('out of memory') } }, Instance: class {} }
  t.equal(gcmCode(failing as unknown as Parameters<typeof gcmCode>[0]), undefined)
  t.type(gcmCode()?.seal, 'function', 'this node has it')
})

t.test('GcmKey refuses a value shorter than its tag, and a nonce that is not 12 bytes', async (t) => {
  const key = new GcmKey(randomBytes(32))
  t.equal(key.open(randomBytes(12), Buffer.alloc(0), randomBytes(15)), undefined)
  t.throws(() => key.open(randomBytes(16), Buffer.alloc(0), randomBytes(20)), TypeError)
})

t.test('many seals never repeat an IV', async (t) => {
  const ivs = new Set<string>()
  for (let i = 0; i < 1000; i++) ivs.add(Buffer.from(seal(ring, 'sid', 'x'), 'base64url').subarray(5, 17).toString('hex'))
  t.equal(ivs.size, 1000)
})

t.test('every single flipped byte fails without throwing', async (t) => {
  const sealed = seal(ring, 'sid', record)
  const length = Buffer.from(sealed, 'base64url').length
  const reasons = new Set<string>()
  for (let i = 0; i < length; i++) {
    const result = unseal(ring, 'sid', tamper(sealed, (bytes) => { bytes[i] ^= 0x01; return bytes }))
    t.notOk(result.ok, `byte ${i}`)
    reasons.add(reasonOf(result))
  }
  t.same([...reasons].sort(), ['authentication failed', 'unknown format version', 'unknown key id'])
})

t.test('every truncation fails', async (t) => {
  const sealed = seal(ring, 'sid', record)
  for (let i = 0; i < sealed.length; i++) {
    t.notOk(unseal(ring, 'sid', sealed.slice(0, i)).ok, `text cut to ${i}`)
  }
  const bytes = Buffer.from(sealed, 'base64url')
  for (let i = 0; i < bytes.length; i++) {
    t.notOk(unseal(ring, 'sid', bytes.subarray(0, i).toString('base64url')).ok, `bytes cut to ${i}`)
  }
  t.equal(reasonOf(unseal(ring, 'sid', sealed.slice(0, 43))), 'malformed', 'shorter than the overhead')
})

t.test('extended values fail', async (t) => {
  const sealed = seal(ring, 'sid', record)
  t.equal(reasonOf(unseal(ring, 'sid', tamper(sealed, (b) => Buffer.concat([b, Buffer.from([0])])))), 'authentication failed')
  for (const suffix of ['A', 'AA', 'AAA', 'AAAA', '=', '==', ' ', '.x', '\n']) {
    t.notOk(unseal(ring, 'sid', sealed + suffix).ok, JSON.stringify(suffix))
  }
})

t.test('only the canonical base64url spelling opens', async (t) => {
  let sealed = seal(ring, 'sid', record)
  while (!/[-_]/.test(sealed) || sealed.length % 4 === 0) sealed = seal(ring, 'sid', record + ' ')
  const standard = Buffer.from(sealed, 'base64url').toString('base64')
  t.equal(reasonOf(unseal(ring, 'sid', standard)), 'malformed', 'standard base64 with padding')
  t.equal(reasonOf(unseal(ring, 'sid', standard.replace(/=+$/, ''))), 'malformed', 'standard base64 unpadded')
  const last = sealed[sealed.length - 1]
  const sibling = String.fromCharCode(last.charCodeAt(0) + 1)
  t.equal(reasonOf(unseal(ring, 'sid', sealed.slice(0, -1) + sibling)), 'malformed', 'non-zero trailing bits')
  // Node reads U+0141 as 'A' (its low byte); it must not decode to the same value.
  const withA = sealed.slice(0, 10) + 'A' + sealed.slice(11)
  t.equal(reasonOf(unseal(ring, 'sid', withA.slice(0, 10) + '\u0141' + withA.slice(11))), 'malformed')
  t.equal(reasonOf(unseal(ring, 'sid', sealed.slice(0, 10) + '!' + sealed.slice(10))), 'malformed', 'stray character')
})

t.test('unknown format version', async (t) => {
  const sealed = seal(ring, 'sid', record)
  const bumped = tamper(sealed, (b) => { b[0] = FORMAT_VERSION + 1; return b })
  t.equal(reasonOf(unseal(ring, 'sid', bumped)), 'unknown format version')
})

t.test('unknown key id', async (t) => {
  const sealed = seal(new KeyRing(OLD), 'sid', record)
  t.equal(reasonOf(unseal(ring, 'sid', sealed)), 'unknown key id')
})

t.test('a value sealed for one context does not open under another', async (t) => {
  const sealed = seal(ring, 'sid', record)
  t.equal(reasonOf(unseal(ring, 'other', sealed)), 'authentication failed')
  t.equal(reasonOf(unseal(ring, 'sid2', sealed)), 'authentication failed')
  t.equal(reasonOf(unseal(ring, '', sealed)), 'authentication failed')
  t.equal(reasonOf(unseal(ring, 'sid', seal(ring, '', record))), 'authentication failed')
})

t.test('rotation: old values open as not current, then stop opening', async (t) => {
  const old = seal(new KeyRing(OLD), 'sid', record)
  const rotated = new KeyRing([NEW, OLD])
  const opened = unseal(rotated, 'sid', old)
  t.ok(opened.ok)
  t.equal(opened.ok && opened.current, false)
  t.equal(opened.ok && opened.keyId, new KeyRing(OLD).keyIds[0])
  t.equal(opened.ok && opened.plaintext.toString(), record)
  const reissued = seal(rotated, 'sid', record)
  t.equal(reasonOf(unseal(new KeyRing(NEW), 'sid', reissued)), 'opened', 'new values use the new secret')
  t.equal(reasonOf(unseal(new KeyRing(NEW), 'sid', old)), 'unknown key id')
})

t.test('key ids do not depend on the position of a secret', async (t) => {
  const a = new KeyRing([NEW, OLD])
  const b = new KeyRing([OLD, NEW])
  t.same(a.keyIds, [...b.keyIds].reverse())
  t.match(a.keyIds[0], /^[0-9a-f]{8}$/)
})

t.test('random strings never throw and never open', async (t) => {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/= .é\u0141😀\u0000'
  for (let i = 0; i < 300; i++) {
    const length = i < 150 ? Math.floor(Math.random() * 120) : Math.floor(Math.random() * 9000)
    let text = ''
    for (let j = 0; j < length; j++) text += alphabet[Math.floor(Math.random() * alphabet.length)]
    t.notOk(unseal(ring, 'sid', text).ok)
  }
  for (let i = 0; i < 200; i++) {
    const bytes = randomBytes(SEAL_OVERHEAD + Math.floor(Math.random() * 100))
    bytes[0] = FORMAT_VERSION
    bytes.writeUInt32BE(parseInt(ring.keyIds[0], 16), 1)
    t.equal(reasonOf(unseal(ring, 'sid', bytes.toString('base64url'))), 'authentication failed')
  }
  t.equal(reasonOf(unseal(ring, 'sid', '')), 'malformed')
  t.equal(reasonOf(unseal(ring, 'sid', 'é'.repeat(8192))), 'malformed')
  t.equal(reasonOf(unseal(ring, 'sid', undefined as unknown as string)), 'malformed', 'not a string at all')
})

t.test('1 MB payload', async (t) => {
  const big = JSON.stringify({ blob: randomBytes(786432).toString('base64') })
  const opened = unseal(ring, 'sid', seal(ring, 'sid', big))
  t.equal(opened.ok && opened.plaintext.toString(), big)
})

t.test('programming errors throw', async (t) => {
  t.throws(() => seal(ring, 1 as unknown as string, 'x'), TypeError)
  t.throws(() => seal(ring, 'sid', 1 as unknown as string), TypeError)
  t.throws(() => unseal(ring, null as unknown as string, 'x'), TypeError)
})

t.test('key ring', async (t) => {
  t.throws(() => new KeyRing([]), /at least one secret/)
  t.throws(() => new KeyRing(['']), { code: 'FST_SESS_INVALID_OPTION', message: /entry 0/ })
  t.throws(() => new KeyRing([NEW, 7 as unknown as string]), /entry 1/)
  t.throws(() => new KeyRing(null as unknown as string), /expected a secret/)
  t.throws(() => new KeyRing({ keys: [{ id: -1, key: Buffer.alloc(32) }] }), /material entry 0/)
  t.throws(() => new KeyRing({ keys: [{ id: 1, key: Buffer.alloc(31) }] }), /material entry 0/)
  t.throws(() => new KeyRing({ keys: [null as unknown as { id: number, key: Buffer }] }), /material entry 0/)
  const clash = { keys: [{ id: 5, key: Buffer.alloc(32, 1) }, { id: 5, key: Buffer.alloc(32, 2) }] }
  t.throws(() => new KeyRing(clash), { code: 'FST_SESS_INVALID_OPTION', message: /share key id 00000005/ })
  t.same(new KeyRing([NEW, OLD, NEW]).keyIds, new KeyRing([NEW, OLD]).keyIds, 'a repeated secret counts once')
})

t.test('a ring rebuilt from material opens what the original sealed, both ways', async (t) => {
  const original = new KeyRing([NEW, OLD])
  const copy = new KeyRing(structuredClone(original.material()))
  t.same(copy.keyIds, original.keyIds)
  t.equal(reasonOf(unseal(copy, 'sid', seal(original, 'sid', record))), 'opened')
  t.equal(reasonOf(unseal(original, 'sid', seal(copy, 'sid', record))), 'opened')
  t.notOk(JSON.stringify(original.material()).includes(NEW), 'no secret in the material')
})

t.test('worker handler: jobs, batches and garbage', async (t) => {
  const handle = createHandler(ring.material())
  const sealed = handle({ op: 'seal', context: 'sid', plaintext: record })
  t.equal(sealed.constructor, Object)
  const text = (sealed as { sealed: string }).sealed
  t.equal(reasonOf(unseal(ring, 'sid', text)), 'opened')
  const batch = handle([
    { op: 'unseal', context: 'sid', sealed: text },
    { op: 'unseal', context: 'sid', sealed: 42 },
    { op: 'seal', context: 'sid', plaintext: new Uint8Array([123, 125]) },
    { op: 'seal', context: 'sid', plaintext: {} },
    { op: 'seal', context: 5, plaintext: 'x' },
    { op: 'delete' },
    null,
    'garbage'
  ]) as Array<{ ok: boolean, reason?: string }>
  t.same(batch.map((r) => r.ok ? 'ok' : r.reason), [
    'ok', 'malformed', 'ok', 'invalid job', 'invalid job', 'invalid job', 'invalid job', 'invalid job'
  ])
})

t.test('worker entry: builds the ring from workerData once and moves plaintexts', async (t) => {
  const worker = t.mockRequire('../src/crypto/worker', {
    'node:worker_threads': { workerData: ring.material() }
  }) as typeof import('../src/crypto/worker')
  const sealed = worker.default({ op: 'seal', context: 'sid', plaintext: record }) as { ok: true, sealed: string }
  t.equal(sealed.ok, true, 'a seal result is posted as is')
  for (const text of [record, record.repeat(100)]) {
    const sealedText = (worker.default({ op: 'seal', context: 'sid', plaintext: text }) as { sealed: string }).sealed
    const opened = worker.default({ op: 'unseal', context: 'sid', sealed: sealedText }) as Record<symbol, unknown>
    const value = opened[valueSymbol] as { plaintext: Uint8Array }
    t.equal(Buffer.from(value.plaintext).toString(), text)
    t.same(opened[transferableSymbol], [value.plaintext.buffer], `the plaintext's memory moves (${text.length} characters)`)
    t.equal(value.plaintext.buffer.byteLength, value.plaintext.byteLength, 'memory of its own, not a slab of the shared pool')
  }
  const batch = worker.default([{ op: 'unseal', context: 'sid', sealed: sealed.sealed }, { op: 'unseal', context: 'sid', sealed: 'x' }]) as Record<symbol, unknown>
  t.equal((batch[transferableSymbol] as unknown[]).length, 1)
  const shared = { ok: true, plaintext: Buffer.from('pooled'), keyId: '0', current: true } as const
  t.same(worker.transferOf([shared]), [], 'a Buffer sharing its memory is copied, not moved')
})

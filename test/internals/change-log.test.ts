import t from 'tap'
import { ChangeLog } from '../../src/change-log'

t.test('a key read and then written conflicts only when the latest copy holds another value', async (t) => {
  const cases: Array<[string, Record<string, unknown>, Record<string, unknown>, boolean]> = [
    ['same number', { n: 1 }, { n: 1 }, false],
    ['another number', { n: 1 }, { n: 2 }, true],
    ['a number became its string', { n: 1 }, { n: '1' }, true],
    ['same string', { s: 'a' }, { s: 'a' }, false],
    ['null and null', { v: null }, { v: null }, false],
    ['false became null', { v: false }, { v: null }, true],
    ['absent, then absent', {}, {}, false],
    ['absent, then set elsewhere', {}, { k: 1 }, true],
    ['present, then deleted elsewhere', { k: 1 }, {}, true],
    ['an equal object', { o: { a: [1, 2] } }, { o: { a: [1, 2] } }, false],
    ['another object', { o: { a: [1, 2] } }, { o: { a: [1, 3] } }, true],
    ['an object became a primitive', { o: { a: 1 } }, { o: 1 }, true]
  ]
  for (const [name, read, latest, conflict] of cases) {
    const log = new ChangeLog()
    const key = Object.keys(read)[0] ?? 'k'
    log.read(read, key)
    log.set(key, 'mine')
    t.equal(log.conflict(latest), conflict ? key : undefined, name)
    const untouched = new ChangeLog()
    untouched.read(read, key)
    t.equal(untouched.conflict(latest), undefined, `${name}: only read, never a conflict`)
  }
})

t.test('values compare as their JSON reads back', async (t) => {
  const when = new Date(1_700_000_000_000)
  const log = new ChangeLog()
  const data: Record<string, unknown> = { when, n: Number.NaN }
  log.committed(data)
  log.read(data, 'when')
  log.read(data, 'n')
  log.set('when', new Date())
  log.set('n', 1)
  t.equal(log.conflict({ when: when.toJSON(), n: null }), undefined, 'a Date is stored as its string, NaN as null')
  t.equal(log.conflict({ when: when.toJSON(), n: 0 }), 'n')
})

t.test('an object read and changed in place is logged as a write, and can be undone', async (t) => {
  const data: Record<string, unknown> = { cart: ['a'], n: 1 }
  const log = new ChangeLog()
  const before = { ...data }
  log.read(data, 'cart')
  log.read(data, 'n')
  t.equal(log.empty, true)
  ;(data.cart as string[]).push('b')
  log.detectMutations(data)
  t.equal(log.empty, false, 'the push is a change')
  t.equal(log.touches('n'), false, 'a primitive read is not')
  t.same(log.undoMutations(before), { cart: ['a'], n: 1 }, 'undone from the JSON read')
  log.committed({ cart: ['a', 'b'], n: 1 })
  t.equal(log.empty, true, 'committed: nothing pending')
})

t.test('after a commit, reads are measured against the committed data', async (t) => {
  const data: Record<string, unknown> = { n: 1, list: [1] }
  const log = new ChangeLog()
  log.read(data, 'n')
  log.set('n', 2)
  data.n = 2
  log.committed(data)
  log.set('n', 3)
  t.equal(log.conflict({ n: 2, list: [1] }), undefined, 'the value it committed is the one it read')
  t.equal(log.conflict({ n: 5, list: [1] }), 'n')
  const objects = new ChangeLog()
  objects.read({ n: 1 }, 'n')
  objects.committed(data)
  ;(data.list as number[]).push(2)
  objects.detectMutations(data)
  t.equal(objects.empty, true, 'a key read as a primitive holds no object to watch')
  objects.read(data, 'list')
  objects.committed(data)
  ;(data.list as number[]).push(3)
  objects.detectMutations(data)
  t.equal(objects.touches('list'), true, 'an object read before a commit is watched after it')
})

t.test('a flat list or object read is kept as a copy, and compares as its JSON would', async (t) => {
  const changes: Array<[string, unknown, (value: any) => unknown, boolean]> = [
    ['nothing', ['a', 1], (list) => list, false],
    ['a push', ['a', 1], (list) => list.push(true), true],
    ['an entry replaced by an equal one', ['a', 1], (list) => { list[1] = 1 }, false],
    ['an entry replaced by an object', ['a', 1], (list) => { list[1] = { x: 1 } }, true],
    ['a shorter list', ['a', 1], (list) => list.pop(), true],
    ['an object unchanged', { a: 1, b: 'x' }, (object) => object, false],
    ['an entry changed', { a: 1, b: 'x' }, (object) => { object.b = 'y' }, true],
    ['an entry added', { a: 1 }, (object) => { object.b = null }, true],
    ['an entry deleted', { a: 1, b: 2 }, (object) => { delete object.b }, true],
    ['the same entries in another order', { a: 1, b: 2 }, (object) => { delete object.a; object.a = 1 }, true],
    ['an entry became an object', { a: 1 }, (object) => { object.a = [1] }, true]
  ]
  for (const [name, value, change, changed] of changes) {
    const data: Record<string, unknown> = { v: value }
    const before = { ...data }
    const log = new ChangeLog()
    log.read(data, 'v')
    const json = JSON.stringify(value)
    change(data.v)
    t.equal(JSON.stringify(data.v) !== json, changed, `${name}: the JSON tells the same`)
    log.detectMutations(data)
    t.equal(log.touches('v'), changed, name)
    const undone = log.undoMutations(before)
    t.equal(JSON.stringify(undone.v), json, `${name}: undone`)
  }
})

t.test('a flat value undone twice gets a copy of its own each time', async (t) => {
  const data: Record<string, unknown> = { list: [1, 2] }
  const log = new ChangeLog()
  log.read(data, 'list')
  ;(data.list as number[]).push(3)
  const first = log.undoMutations({ ...data })
  ;(first.list as number[]).push(4)
  const second = log.undoMutations({ ...data })
  t.same(second.list, [1, 2], 'changing the first copy did not change the record of the read')
  t.not(first.list, second.list)
})

t.test('a flat value read and written conflicts only when the latest copy holds another one', async (t) => {
  const log = new ChangeLog()
  log.read({ list: ['a', 'b'], o: { k: 1 } }, 'list')
  log.read({ list: ['a', 'b'], o: { k: 1 } }, 'o')
  log.set('list', ['mine'])
  log.set('o', { k: 2 })
  t.equal(log.conflict({ list: ['a', 'b'], o: { k: 1 } }), undefined)
  t.equal(log.conflict({ list: ['a', 'b', 'c'], o: { k: 1 } }), 'list')
  t.equal(log.conflict({ list: ['a', 'b'], o: { k: '1' } }), 'o')
  t.equal(log.conflict({ list: 'a,b', o: { k: 1 } }), 'list', 'a list became a string')
  t.equal(log.conflict({ list: ['a', 'b'], o: ['k'] }), 'o', 'an object became a list')
})

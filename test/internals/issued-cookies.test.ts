import t from 'tap'
import { IssuedCookies } from '../../src/issued-cookies'

const bytes = (fill: number, length: number): Buffer => Buffer.alloc(length, fill)

t.test('IssuedCookies gives back a copy of what each cookie was sealed from', async (t) => {
  const issued = new IssuedCookies(4, 100)
  issued.add('a', bytes(1, 10))
  issued.add('b', bytes(2, 10))
  const a = issued.get('a') as Buffer
  t.same(a, bytes(1, 10))
  a.fill(9)
  t.same(issued.get('a'), bytes(1, 10), 'changing a copy changes nothing kept')
  t.same(issued.get('b'), bytes(2, 10))
  t.equal(issued.get('c'), undefined, 'a cookie never added')
  t.equal(issued.size, 2)
})

t.test('IssuedCookies drops the oldest cookie when every slot is taken', async (t) => {
  const issued = new IssuedCookies(3, 1000)
  for (const [i, cookie] of ['a', 'b', 'c', 'd', 'e'].entries()) issued.add(cookie, bytes(i, 5))
  t.equal(issued.size, 3)
  t.same(['a', 'b', 'c', 'd', 'e'].map((cookie) => issued.get(cookie)?.[0]), [undefined, undefined, 2, 3, 4])
})

t.test('IssuedCookies drops the oldest payloads to make room, wrapping round the ring', async (t) => {
  const issued = new IssuedCookies(100, 100)
  issued.add('a', bytes(1, 25))
  issued.add('b', bytes(2, 25))
  issued.add('c', bytes(3, 25))
  issued.add('d', bytes(4, 20))
  t.equal(issued.size, 4, '95 of 100 bytes')
  issued.add('e', bytes(5, 20))
  t.equal(issued.get('a'), undefined, 'the oldest made room at the start of the ring')
  t.same(['b', 'c', 'd', 'e'].map((cookie) => issued.get(cookie)), [bytes(2, 25), bytes(3, 25), bytes(4, 20), bytes(5, 20)])
  issued.add('f', bytes(6, 5))
  t.same(issued.get('f'), bytes(6, 5), 'fits between the newest and the oldest')
  t.equal(issued.size, 5)
  issued.add('g', bytes(7, 10))
  t.equal(issued.get('b'), undefined, 'the gap was too small: the oldest went')
  t.same(['c', 'd', 'e', 'f', 'g'].map((cookie) => issued.get(cookie)?.[0]), [3, 4, 5, 6, 7])
  for (let i = 0; i < 50; i++) issued.add(`x${i}`, bytes(i, 1 + (i % 25)))
  const kept = Array.from({ length: 50 }, (_, i) => issued.get(`x${i}`))
  const last = kept.findIndex((payload) => payload !== undefined)
  t.ok(last > 0, 'many payloads later, the oldest are gone')
  for (let i = last; i < 50; i++) t.same(kept[i], bytes(i, 1 + (i % 25)), `x${i} intact after wrapping`)
})

t.test('IssuedCookies keeps no payload larger than a quarter of the ring', async (t) => {
  const issued = new IssuedCookies(10, 100)
  issued.add('a', bytes(1, 25))
  issued.add('big', bytes(2, 26))
  t.equal(issued.get('big'), undefined)
  t.same(issued.get('a'), bytes(1, 25), 'nothing was dropped for it')
})

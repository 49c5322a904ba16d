import t from 'tap'
import { bucketOf, IssuedCookies } from '../../src/issued-cookies'

const bytes = (fill: number, length: number): Buffer => Buffer.alloc(length, fill)

// Cookies of 10 characters, none sharing a bucket of a table of `buckets` (when one table
// is shared, a cookie can be missed for a newer one: tested on its own below).
function cookies (count: number, buckets: number): string[] {
  const taken = new Set<number>()
  const found: string[] = []
  for (let i = 0; found.length < count; i++) {
    const cookie = `cookie${String(i).padStart(4, '0')}`
    const bucket = bucketOf(cookie, buckets - 1)
    if (taken.has(bucket)) continue
    taken.add(bucket)
    found.push(cookie)
  }
  return found
}

t.test('IssuedCookies gives back a copy of what each cookie was sealed from', async (t) => {
  const issued = new IssuedCookies(4, 100)
  const [a, b, c] = cookies(3, 8)
  issued.add(a, bytes(1, 10))
  issued.add(b, bytes(2, 10))
  const copy = issued.get(a)?.payload as Buffer
  t.same(copy, bytes(1, 10))
  copy.fill(9)
  t.same(issued.get(a)?.payload, bytes(1, 10), 'changing a copy changes nothing kept')
  t.same(issued.get(b)?.payload, bytes(2, 10))
  t.equal(issued.get(c)?.payload, undefined, 'a cookie never added')
  t.equal(issued.size, 2)
})

t.test('IssuedCookies answers only for the very cookie it kept', async (t) => {
  const issued = new IssuedCookies(4, 100)
  const [a] = cookies(1, 8)
  issued.add(a, bytes(1, 10))
  // Same length and bucket, other characters; a longer and a shorter one ending the same.
  const sameBucket = Array.from({ length: 100 }, (_, i) => `x${String(i).padStart(9, '0')}`)
    .find((cookie) => bucketOf(cookie, 7) === bucketOf(a, 7)) as string
  t.ok(sameBucket)
  t.equal(issued.get(sameBucket)?.payload, undefined)
  t.equal(issued.get('z' + a)?.payload, undefined)
  t.equal(issued.get(a.slice(1)), undefined)
  t.equal(issued.get(a.slice(0, -1) + 'Ł'), undefined, 'a character beyond one byte is not read as its low byte')
  t.same(issued.get(a)?.payload, bytes(1, 10))
})

t.test('IssuedCookies: of two cookies in one bucket the newer is found, the older is a miss', async (t) => {
  const issued = new IssuedCookies(4, 100)
  const [a] = cookies(1, 8)
  const b = Array.from({ length: 100 }, (_, i) => `y${String(i).padStart(9, '0')}`)
    .find((cookie) => bucketOf(cookie, 7) === bucketOf(a, 7)) as string
  issued.add(a, bytes(1, 10))
  issued.add(b, bytes(2, 10))
  t.equal(issued.get(a)?.payload, undefined)
  t.same(issued.get(b)?.payload, bytes(2, 10))
  const [c, d, e] = cookies(4, 8).filter((cookie) => bucketOf(cookie, 7) !== bucketOf(a, 7))
  for (const [i, cookie] of [c, d, e].entries()) issued.add(cookie, bytes(3 + i, 10))
  t.same(issued.get(b)?.payload, bytes(2, 10), 'dropping the older one left the newer one in its bucket')
  t.same([c, d, e].map((cookie) => issued.get(cookie)?.payload?.[0]), [3, 4, 5])
})

t.test('IssuedCookies drops the oldest cookie when every slot is taken', async (t) => {
  const issued = new IssuedCookies(3, 1000)
  const all = cookies(5, 8)
  for (const [i, cookie] of all.entries()) issued.add(cookie, bytes(i, 5))
  t.equal(issued.size, 3)
  t.same(all.map((cookie) => issued.get(cookie)?.payload?.[0]), [undefined, undefined, 2, 3, 4])
})

t.test('IssuedCookies drops the oldest cookies to make room, wrapping round the ring', async (t) => {
  // Each cookie takes its 10 characters and its payload.
  const issued = new IssuedCookies(100, 150)
  const [a, b, c, d, e, f, g] = cookies(7, 256)
  issued.add(a, bytes(1, 25))
  issued.add(b, bytes(2, 25))
  issued.add(c, bytes(3, 25))
  issued.add(d, bytes(4, 20))
  t.equal(issued.size, 4, '135 of 150 bytes')
  issued.add(e, bytes(5, 15))
  t.equal(issued.get(a)?.payload, undefined, 'the oldest made room at the start of the ring')
  t.same([b, c, d, e].map((cookie) => issued.get(cookie)?.payload), [bytes(2, 25), bytes(3, 25), bytes(4, 20), bytes(5, 15)])
  issued.add(f, bytes(6, 0))
  t.same(issued.get(f)?.payload, bytes(6, 0), 'fits between the newest and the oldest')
  t.equal(issued.size, 5)
  issued.add(g, bytes(7, 10))
  t.equal(issued.get(b)?.payload, undefined, 'the gap was too small: the oldest went')
  t.same([c, d, e, f, g].map((cookie) => issued.get(cookie)?.payload?.length), [25, 20, 15, 0, 10])
  const more = cookies(57, 256).slice(7)
  for (const [i, cookie] of more.entries()) issued.add(cookie, bytes(i, 1 + (i % 25)))
  const kept = more.map((cookie) => issued.get(cookie)?.payload)
  const last = kept.findIndex((payload) => payload !== undefined)
  t.ok(last > 0, 'many cookies later, the oldest are gone')
  for (let i = last; i < 50; i++) t.same(kept[i], bytes(i, 1 + (i % 25)), `cookie ${i} intact after wrapping`)
})

t.test('IssuedCookies keeps no cookie larger than a quarter of the ring', async (t) => {
  const issued = new IssuedCookies(10, 140)
  const [a, big] = cookies(2, 32)
  issued.add(a, bytes(1, 25))
  issued.add(big, bytes(2, 26))
  t.equal(issued.get(big)?.payload, undefined)
  t.same(issued.get(a)?.payload, bytes(1, 25), 'nothing was dropped for it')
})

t.test('IssuedCookies counts how often each cookie came back, and forgets one on request', async (t) => {
  const issued = new IssuedCookies(4, 100)
  const [a, b] = cookies(2, 8)
  issued.add(a, bytes(1, 10))
  issued.add(b, bytes(2, 10))
  t.same([1, 2, 3].map(() => issued.get(a)?.returns), [1, 2, 3])
  t.equal(issued.get(b)?.returns, 1, 'each cookie its own count')
  issued.forget(a)
  t.equal(issued.get(a), undefined)
  issued.forget(a)
  t.same(issued.get(b)?.payload, bytes(2, 10), 'the others stay')
  const [c, d, e] = cookies(5, 8).slice(2)
  for (const cookie of [c, d, e]) issued.add(cookie, bytes(3, 10))
  t.equal(issued.get(e)?.returns, 1, 'a slot used again starts from zero')
})

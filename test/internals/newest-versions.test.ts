import t from 'tap'
import { NewestVersions } from '../../src/newest-versions'

t.test('NewestVersions keeps the newest version of the most recent keys', async (t) => {
  const newest = new NewestVersions(2)
  newest.saw('a', 3)
  t.equal(newest.outdated('a', 2), true, 'an older version is bound to lose')
  t.equal(newest.outdated('a', 3), false)
  t.equal(newest.outdated('a', 4), false, 'a newer one may be stored elsewhere')
  t.equal(newest.outdated('b', 1), false, 'an unknown key says nothing')
  newest.saw('a', 2)
  t.equal(newest.outdated('a', 2), false, 'the store went back (a failover, a restored backup): so does the hint')
  newest.saw('a', 3)
  newest.saw('b', 1)
  newest.saw('a', 4)
  newest.saw('c', 1)
  t.equal(newest.get('b'), undefined, 'the least recently seen key went')
  t.same([newest.get('a'), newest.get('c')], [4, 1])
  newest.forget('a')
  t.equal(newest.outdated('a', 1), false, 'forgotten')
})

t.test('NewestVersions remembers the half plus one seen last, and never more than the limit plus one', async (t) => {
  const max = 8
  const newest = new NewestVersions(max)
  const counts = new Set<number>()
  for (let i = 0; i < 100; i++) {
    newest.saw(`k${i}`, 1)
    const remembered = Array.from({ length: i + 1 }, (_, j) => newest.get(`k${j}`) !== undefined)
    const count = remembered.filter(Boolean).length
    const first = remembered.indexOf(true)
    t.ok(remembered.slice(first).every(Boolean), `after ${i + 1}: the remembered keys are the last ones seen`)
    if (i >= max) counts.add(count)
  }
  t.same([Math.min(...counts), Math.max(...counts)], [max / 2 + 1, max + 1])
})

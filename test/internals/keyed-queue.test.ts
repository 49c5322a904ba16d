import t from 'tap'
import { KeyedQueue } from '../../src/keyed-queue'

/** A task that runs until its `finish` is called. */
function gate (): { task: () => Promise<void>, finish: () => void } {
  let finish = (): void => {}
  const done = new Promise<void>((resolve) => { finish = resolve })
  return { task: async () => await done, finish }
}

// Lets the queue's own promise callbacks run.
const settle = async (): Promise<void> => await new Promise((resolve) => setImmediate(resolve))

t.test('waiting() says whether a task of the key waits behind the running one', async (t) => {
  const idle: string[] = []
  const queue = new KeyedQueue((key) => idle.push(key))
  const [a, b, c] = [gate(), gate(), gate()]
  const other = gate()
  const runs = [queue.run('k', a.task), queue.run('k', b.task), queue.run('k', c.task), queue.run('x', other.task)]
  t.same([queue.waiting('k'), queue.waiting('x'), queue.size], [true, false, 2], 'two behind on k; x runs alone')
  a.finish()
  await settle()
  t.equal(queue.waiting('k'), true, 'one still behind')
  b.finish()
  await settle()
  t.same([queue.waiting('k'), queue.busy('k')], [false, true], 'the last runs alone')
  c.finish()
  other.finish()
  await Promise.all(runs)
  await settle()
  t.same([queue.waiting('k'), queue.busy('k'), queue.size], [false, false, 0])
  t.same(idle.sort(), ['k', 'x'], 'each key went idle once')
  const d = gate()
  const again = queue.run('k', d.task)
  t.equal(queue.waiting('k'), false, 'a key that went idle starts over alone')
  d.finish()
  await again
})

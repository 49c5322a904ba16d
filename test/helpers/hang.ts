/**
 * Fails the test after `ms` when it has not ended, for behaviour that could hang.
 * Neither tap's timer nor a promise that never settles keeps the process alive: without
 * the interval, a hang would end the whole file at once and the tests after it would
 * never run.
 */
export function failOnHang (t: tap.Test, ms = 3000): void {
  t.setTimeout(ms)
  const alive = setInterval(() => {}, 1000)
  t.teardown(() => clearInterval(alive))
}

// What `fsync: true` costs FileStore: writes per second and latency of one writer, with and
// without it, for a small session and a 200 KB one, in a directory on the filesystem given
// as the first argument (default: the OS temporary directory; tmpfs makes fsync free, so
// point it at the disk your sessions will live on). Run `npm run build` first.
//   node benchmarks/file-fsync.mjs [dir] [writes]
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FileStore } from '../dist/index.mjs'
import { uniqueKey } from '../dist/testing/index.js'

const base = process.argv[2] ?? tmpdir()
const writes = Number(process.argv[3] ?? 500)

async function run (fsync, bytes) {
  const dir = mkdtempSync(join(base, 'file-fsync-'))
  const store = new FileStore({ dir, fsync, sweepInterval: false })
  const key = uniqueKey()
  const data = { blob: 'x'.repeat(bytes) }
  const now = Date.now()
  await store.set(key, { data, version: 1, createdAt: now, expiresAt: now + 3_600_000 }, 0)
  const times = []
  const started = process.hrtime.bigint()
  for (let version = 2; version < writes + 2; version++) {
    const t0 = process.hrtime.bigint()
    await store.set(key, { data, version, createdAt: now, expiresAt: now + 3_600_000 }, version - 1)
    times.push(Number(process.hrtime.bigint() - t0) / 1e6)
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  await store.close()
  rmSync(dir, { recursive: true, force: true })
  times.sort((a, b) => a - b)
  const at = (q) => times[Math.min(times.length - 1, Math.floor(q * times.length))].toFixed(2)
  return { fsync, size: bytes >= 1000 ? `${bytes / 1000} KB` : `${bytes} B`, 'writes/s': Math.round(writes / seconds), 'p50 ms': at(0.5), 'p99 ms': at(0.99) }
}

const rows = []
for (const bytes of [100, 200_000]) {
  for (const fsync of [false, true]) rows.push(await run(fsync, bytes))
}
console.log(`${writes} sequential writes of one session in ${base}`)
console.table(rows)

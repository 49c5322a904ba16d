import t from 'tap'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'

// docs/security.md answers each item of a checklist with the test that shows it: every test
// it names must exist, so that renaming or deleting one makes the claim visibly unbacked.

const root = join(__dirname, '..')
const doc = readFileSync(join(root, 'docs', 'security.md'), 'utf8')

/** The `test/...` paths of one table row, and the quoted test names that follow each. */
function citations (row: string): Array<{ file: string, names: string[] }> {
  const cells = row.split('|')
  const shownBy = cells[cells.length - 2] ?? ''
  return shownBy.split(';').flatMap((part) => {
    const file = /`(test\/[^`]+)`/.exec(part)?.[1]
    if (file === undefined) return []
    const names = [...part.matchAll(/"([^"]+)"/g)].map((m) => m[1].replace(/ …$/, ''))
    return [{ file, names }]
  })
}

function testSource (path: string): string {
  const full = join(root, path)
  const files = statSync(full).isFile() ? [full] : readdirSync(full).filter((f) => f.endsWith('.ts')).map((f) => join(full, f))
  // Test names are string literals: read them with their escapes undone.
  return files.map((f) => readFileSync(f, 'utf8')).join('\n').replaceAll("\\'", "'")
}

t.test('docs/security.md cites only tests that exist', async (t) => {
  const rows = doc.split('\n').filter((line) => line.startsWith('| ') && !line.startsWith('| item') && !line.startsWith('|---'))
  t.ok(rows.length >= 25, `${rows.length} checklist items`)
  let cited = 0
  for (const row of rows) {
    for (const { file, names } of citations(row)) {
      t.ok(existsSync(join(root, file)), `${file} exists`)
      if (!existsSync(join(root, file))) continue
      const source = testSource(file)
      for (const name of names) {
        cited++
        t.ok(source.includes(name), `${file}: "${name}"`)
      }
    }
  }
  t.ok(cited >= 25, `${cited} tests cited by name`)
})

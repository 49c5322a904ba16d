import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import * as api from '../src/index'

const readme = readFileSync(join(__dirname, '..', 'README.md'), 'utf8')

t.test('README lists exactly the error codes of src/errors.ts', async (t) => {
  const section = readme.split('## Errors')[1]?.split('\n## ')[0] ?? ''
  const documented = [...section.matchAll(/^\| `(FST_SESS_[A-Z_]+)` \| (\d{3}) \|/gm)].map((m) => `${m[1]} ${m[2]}`).sort()
  type ErrorClass = new () => Error & { code: string, statusCode: number }
  const errors = Object.values(api).filter((v) => typeof v === 'function' && /Error$/.test(v.name)) as unknown as ErrorClass[]
  const actual = errors.map((E) => { const e = new E(); return `${e.code} ${e.statusCode}` }).sort()
  t.ok(actual.length >= 6)
  t.same(documented, actual)
})

t.test('README documents every registration option', async (t) => {
  const options = ['secret', 'store', 'cookieName', 'cookie.path', 'cookie.domain', 'cookie.httpOnly', 'cookie.secure',
    'cookie.sameSite', 'cookie.partitioned', 'cookie.maxAge', 'idleTimeout', 'absoluteTimeout', 'saveUninitialized',
    'rolling', 'conflict', 'encryptAtRest', 'storeTimeout', 'userKey', 'crypto.offload', 'crypto.threads',
    'csrf', 'csrf.trustedOrigins', 'csrf.reportOnly', 'csrf.token']
  for (const option of options) t.match(readme, new RegExp(`^\\| \`${option.replace('.', '\\.')}\` \\|`, 'm'), option)
})

t.test('README documents every session member', async (t) => {
  const proto = Object.getOwnPropertyNames(api.Session.prototype).filter((n) => n !== 'constructor')
  t.ok(proto.length >= 16, `${proto.length} members`)
  for (const member of proto) t.match(readme, new RegExp('`' + member + '[`(]'), member)
})

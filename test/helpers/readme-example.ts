import { readFileSync } from 'node:fs'
import { join } from 'node:path'

/**
 * The code between `// README: begin` and `// README: end` in a module the tests run,
 * one indent level removed, and whether README.md holds it verbatim: the README's examples
 * are the code the tests run.
 */
export function readmeExample (dir: string, file: string): { code: string, inReadme: boolean } {
  const source = readFileSync(join(dir, file), 'utf8')
  const body = /\/\/ README: begin\n([\s\S]*?)\n\s*\/\/ README: end/.exec(source)?.[1] ?? ''
  const code = body.split('\n').map((line) => line.replace(/^ {2}/, '')).join('\n')
  const readme = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8')
  return { code, inReadme: code.length > 0 && readme.includes(code) }
}

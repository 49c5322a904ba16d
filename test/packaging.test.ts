import t from 'tap'
import { execFile } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import ts from 'typescript'
import api = require('../src/index')

// The package as a user gets it: `npm pack` of the dist/ that `npm test` built before tap started,
// unpacked into node_modules of a throwaway project. The project's parent directory links to this
// repository's node_modules, so fastify and the package's dependencies resolve offline.

const run = promisify(execFile)
// What runs the packed package is a user's process, not part of the suite: it records no
// coverage (its dist/ code, mapped back to src/, would be merged into the suite's figures).
const { NODE_V8_COVERAGE: _coverage, NODE_OPTIONS: _options, ...userEnv } = process.env
const root = resolve(__dirname, '..')
const tmp = realpathSync(mkdtempSync(join(tmpdir(), 'fastify-sessions-packed-')))
const project = join(tmp, 'project')
t.teardown(() => rmSync(tmp, { recursive: true, force: true }))

/** Every name the source exports, the default export aside. */
const names = Object.keys(api).filter((name) => name !== 'default').sort()

t.before(async () => {
  symlinkSync(join(root, 'node_modules'), join(tmp, 'node_modules'), 'dir')
  const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], { cwd: root, env: userEnv })
  const [{ filename }] = JSON.parse(stdout) as Array<{ filename: string }>
  const installed = join(project, 'node_modules', 'fastify-sessions')
  mkdirSync(installed, { recursive: true })
  await run('tar', ['xzf', join(tmp, filename), '-C', installed, '--strip-components=1'])
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true }))
})

/** Runs a file of the project with node and parses what it printed. */
async function runJson (file: string): Promise<Record<string, unknown>> {
  const { stdout } = await run(process.execPath, [file], { cwd: project, env: userEnv })
  return JSON.parse(stdout) as Record<string, unknown>
}

t.test('an ES module imports every export by name, each the very value require() returns', async (t) => {
  writeFileSync(join(project, 'consumer.mjs'), `
    import defaultExport, { ${names.join(', ')} } from 'fastify-sessions'
    import { createRequire } from 'node:module'
    const required = createRequire(import.meta.url)('fastify-sessions')
    const imported = { ${names.join(', ')} }
    console.log(JSON.stringify({
      defaultIsRequired: defaultExport === required,
      same: Object.keys(imported).filter((name) => imported[name] !== undefined && imported[name] === required[name])
    }))
  `)
  t.same(await runJson('consumer.mjs'), { defaultIsRequired: true, same: names })
})

t.test('require() is the plugin itself, carrying every export, each the value import() gives', async (t) => {
  writeFileSync(join(project, 'consumer.cjs'), `
    const plugin = require('fastify-sessions')
    import('fastify-sessions').then((esm) => console.log(JSON.stringify({
      type: typeof plugin,
      defaultIsPlugin: plugin.default === plugin && esm.default === plugin,
      namedIsPlugin: plugin.fastifySessions === plugin,
      properties: Object.keys(plugin).filter((name) => name !== 'default').sort(),
      same: Object.keys(esm).filter((name) => name !== 'default' && esm[name] === plugin[name]).sort()
    })))
  `)
  t.same(await runJson('consumer.cjs'), { type: 'function', defaultIsPlugin: true, namedIsPlugin: true, properties: names, same: names })
})

// Type checks of real files against the packed declarations. Only the project's files and the
// package's own declarations are checked (skipLibCheck stays off for them): checking all of
// fastify's and Node's declarations would only cost time.

const fixtures = join(__dirname, 'fixtures', 'consumer')
const readme = readFileSync(join(root, 'README.md'), 'utf8')

interface Checked {
  diagnostics: string[]
  /** Every name, value or type, that tsc declared for src/index.ts. */
  declared: string[]
  /** For each file that imports the package, the names that import offers. */
  offered: Record<string, string[]>
}

function typeCheck (rootNames: string[], options: ts.CompilerOptions): Checked {
  const program = ts.createProgram(rootNames, { strict: true, noEmit: true, target: ts.ScriptTarget.ES2022, types: ['node'], ...options })
  const checker = program.getTypeChecker()
  const ours = program.getSourceFiles().filter((file) => rootNames.includes(file.fileName) || file.fileName.includes('/node_modules/fastify-sessions/'))
  const diagnostics = [...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics(),
    ...ours.flatMap((file) => [...program.getSyntacticDiagnostics(file), ...program.getSemanticDiagnostics(file)])]
  const exportedNames = (symbol: ts.Symbol | undefined): string[] => symbol === undefined ? [] : checker.getExportsOfModule(symbol).map((s) => s.name).sort()
  const source = ours.find((file) => file.fileName.endsWith('/fastify-sessions/dist/api.d.ts'))
  const declared = exportedNames(source && checker.getSymbolAtLocation(source))
  const offered: Record<string, string[]> = {}
  for (const file of ours.filter((file) => rootNames.includes(file.fileName))) {
    for (const statement of file.statements) {
      const specifier = ts.isImportDeclaration(statement)
        ? statement.moduleSpecifier
        : ts.isImportEqualsDeclaration(statement) && ts.isExternalModuleReference(statement.moduleReference) ? statement.moduleReference.expression : undefined
      if (specifier === undefined || !ts.isStringLiteral(specifier) || specifier.text !== 'fastify-sessions') continue
      offered[file.fileName.slice(project.length + 1)] = exportedNames(checker.getSymbolAtLocation(specifier))
    }
  }
  return {
    diagnostics: diagnostics.map((d) => `${d.file?.fileName.slice(tmp.length + 1) ?? ''} TS${d.code}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`),
    declared,
    offered
  }
}

t.test('the README quick start and every export type-check under nodenext (ESM and CommonJS) and bundler', async (t) => {
  const quickStart = /## Quick start\n+```ts\n([\s\S]*?)```/.exec(readme)?.[1]
  t.ok(quickStart, 'the README has a quick start')
  writeFileSync(join(project, 'quick-start.mts'), quickStart ?? '')
  cpSync(fixtures, project, { recursive: true })
  const files = (...list: string[]): string[] => list.map((file) => join(project, file))
  const all = readdirSync(fixtures)

  const checks = {
    nodenext: typeCheck(files('quick-start.mts', ...all), { module: ts.ModuleKind.NodeNext, esModuleInterop: true }),
    bundler: typeCheck(files('quick-start.mts', 'typed-data.mts'), { module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler })
  }
  for (const [mode, { diagnostics, declared, offered }] of Object.entries(checks)) {
    t.same(diagnostics, [], `${mode}: no diagnostics`)
    t.ok(declared.length > names.length, `${mode}: tsc declared values and types`)
    const files = Object.keys(offered)
    t.ok(files.length >= 2, `${mode}: ${files.join(', ')}`)
    t.same(offered, Object.fromEntries(files.map((file) => [file, declared])), `${mode}: every import offers every export`)
  }
})

// fastify-sessions/testing: the conformance suite, for store authors, from both module systems.

/** Runs a file of the project under node:test's TAP reporter and answers its counts. */
async function runSuite (file: string, cwd = project): Promise<{ tests: number, pass: number, fail: number }> {
  const { stdout } = await run(process.execPath, ['--test-reporter=tap', file], { cwd, env: userEnv })
  const count = (name: string): number => Number(new RegExp(`^# ${name} (\\d+)$`, 'm').exec(stdout)?.[1])
  return { tests: count('tests'), pass: count('pass'), fail: count('fail') }
}

t.test('fastify-sessions/testing: import and require() give the same functions', async (t) => {
  writeFileSync(join(project, 'testing.mjs'), `
    import { conformance, uniqueKey } from 'fastify-sessions/testing'
    import { createRequire } from 'node:module'
    const required = createRequire(import.meta.url)('fastify-sessions/testing')
    console.log(JSON.stringify({
      types: [typeof conformance, typeof uniqueKey],
      same: conformance === required.conformance && uniqueKey === required.uniqueKey,
      names: Object.keys(required).sort(),
      key: /^[\\w-]{43}$/.test(uniqueKey())
    }))
  `)
  t.same(await runJson('testing.mjs'), { types: ['function', 'function'], same: true, names: ['conformance', 'uniqueKey'], key: true })
})

t.test('fastify-sessions/testing: require() runs the suite under node:test on the installed MemoryStore', async (t) => {
  writeFileSync(join(project, 'testing.test.cjs'), `
    const { test } = require('node:test')
    const { conformance } = require('fastify-sessions/testing')
    const { MemoryStore } = require('fastify-sessions')
    conformance({ test, store: () => new MemoryStore(), name: 'installed MemoryStore' })
  `)
  const counts = await runSuite('testing.test.cjs')
  t.ok(counts.tests >= 25, `${counts.tests} cases`)
  t.same(counts, { tests: counts.tests, pass: counts.tests, fail: 0 })
})

t.test('the README store type-checks against the packed declarations and passes the suite, imported as an ES module', async (t) => {
  const section = readme.split('\n### Writing a store\n')[1]?.split(/\n##+ /)[0] ?? ''
  const [store, nodeTest, tapTest] = [...section.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1])
  t.ok(store !== undefined && nodeTest !== undefined && tapTest !== undefined, 'the section has the store, a node:test file and a tap file')
  const dir = join(project, 'readme-store')
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module', private: true }))
  const sources = { 'map-store.ts': store, 'map-store.test.ts': nodeTest, 'map-store.tap.ts': tapTest }
  for (const [file, text] of Object.entries(sources)) writeFileSync(join(dir, file), text ?? '')
  // TypeScript's own form of require(), from a CommonJS file.
  writeFileSync(join(project, 'testing-require.cts'), `
    import testing = require('fastify-sessions/testing')
    import nodeTest = require('node:test')
    import { MemoryStore } from 'fastify-sessions'
    testing.conformance({ test: nodeTest.test, store: () => new MemoryStore(), clock: 'server', shortTtlMs: 2000 })
    // @ts-expect-error the store factory is required
    testing.conformance({ test: nodeTest.test })
  `)
  const files = [...Object.keys(sources).map((file) => join(dir, file)), join(project, 'testing-require.cts')]
  t.same(typeCheck(files, { module: ts.ModuleKind.NodeNext, esModuleInterop: true }).diagnostics, [], 'no diagnostics')

  for (const file of ['map-store.ts', 'map-store.test.ts']) {
    const { outputText } = ts.transpileModule(readFileSync(join(dir, file), 'utf8'), { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } })
    writeFileSync(join(dir, file.replace(/\.ts$/, '.js')), outputText)
  }
  const counts = await runSuite('map-store.test.js', dir)
  t.ok(counts.tests >= 25, `${counts.tests} cases`)
  t.same(counts, { tests: counts.tests, pass: counts.tests, fail: 0 })
})

import type { Case } from '../case'
import { comparable, record } from '../record'
import { uniqueKey } from '../unique-key'

// 1 MiB of text that is not one repeated character, so a compressing serializer still moves
// a real amount of data.
function megabyte (): string {
  return Array.from({ length: 16_384 }, (_, i) => i.toString(36).padStart(64, '.')).join('')
}

export const values: Case[] = [
  {
    title: 'a 1 MB value round-trips',
    async run ({ store, check }) {
      const key = uniqueKey()
      const written = record({ big: megabyte(), list: Array.from({ length: 1000 }, (_, i) => ({ i, s: `item ${i}` })) })
      check.equal(await store.set(key, written, 0), true, 'set of a 1 MB record')
      check.same(comparable(await store.get(key)), written, 'get of the 1 MB record')
    }
  },
  {
    title: 'unicode values and keys round-trip, NUL, line separators and astral characters included',
    async run ({ store, check }) {
      const key = uniqueKey()
      const written = record({
        text: 'héllo wörld — 日本語 — Ελληνικά — עברית — हिन्दी',
        nul: 'a\u0000b',
        separators: 'line\u2028paragraph\u2029end',
        controls: '\u0001\u001f\t\n\r"\\/',
        emoji: '😀 👩‍👩‍👧 🏳️‍🌈 👍🏽',
        astral: '𝄞 𝒳 🀄 𠀋',
        edges: '\ud7ff\ue000\ufffd\uffff',
        'ключ 🔑': 'значение',
        '𝒳\u0000': ['\u0000', '\u2028', '🔑'],
        '': 'an empty key',
        nested: { '日本': { 'ü': 'ö' } }
      })
      await store.set(key, written, 0)
      check.same(comparable(await store.get(key)), written, 'get of the unicode record')
    }
  },
  {
    title: 'own __proto__ and constructor keys in data round-trip as own keys and pollute no prototype',
    async run ({ store, check }) {
      const key = uniqueKey()
      // JSON.parse makes own properties of these names, as data taken from a request body can hold.
      const json = '{"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}},' +
        '"prototype":{"polluted":"yes"},"nested":{"__proto__":["a","list"],"deeper":{"constructor":"x"}}}'
      await store.set(key, record(JSON.parse(json)), 0)
      const data = (await store.get(key))?.data as Record<string, Record<string, unknown>>
      check.same(data, JSON.parse(json), 'the data read')
      check.ok(Object.hasOwn(data, '__proto__') && Object.hasOwn(data, 'constructor'), '__proto__ and constructor to be own keys of the data read')
      check.ok(Object.hasOwn(data.nested, '__proto__'), 'a nested __proto__ to be an own key')
      check.equal(Object.getPrototypeOf(data), Object.prototype, 'the prototype of the data read')
      check.equal(Object.getPrototypeOf(data.nested), Object.prototype, 'the prototype of nested data read')
      check.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype.polluted')
      check.equal(([] as unknown as Record<string, unknown>).polluted, undefined, 'Array.prototype.polluted')
    }
  }
]

import { parse } from 'secure-json-parse'

/**
 * JSON.parse with prototype-poisoning protection. secure-json-parse does the work
 * whenever the text could hold a "__proto__" or "constructor" key, spelled out or
 * escaped; text that cannot (nearly all of it) skips its wrapper and two scans.
 */
export function parseJson (text: string): unknown {
  if (text.includes('__proto__') || text.includes('constructor') || text.includes('\\u') || text.charCodeAt(0) === 0xFEFF) {
    return parse(text)
  }
  return JSON.parse(text)
}

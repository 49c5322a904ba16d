import { Writable } from 'node:stream'

export interface LogLine {
  level: number
  msg: string
  [field: string]: unknown
}

/** Pino's numeric levels. */
export const WARN = 40
export const DEBUG = 20

/** A Fastify `logger` option that keeps every line, parsed, in `lines`. */
export function logLines (level = 'debug'): { lines: LogLine[], logger: { level: string, stream: Writable } } {
  const lines: LogLine[] = []
  const stream = new Writable({
    write (chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)) as LogLine)
      done()
    }
  })
  return { lines, logger: { level, stream } }
}

/** The plugin's warnings among the lines. */
export function sessionWarnings (lines: LogLine[]): LogLine[] {
  return lines.filter((line) => line.level === WARN && line.msg.startsWith('fastify-sessions:'))
}

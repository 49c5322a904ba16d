// `fastify-sessions/testing`: the conformance suite every store runs, ours and third-party
// ones alike, for any test runner. It imports nothing but Node built-ins.
export { conformance, type ConformanceOptions, type RegisterCase } from './conformance'
export { uniqueKey } from './unique-key'

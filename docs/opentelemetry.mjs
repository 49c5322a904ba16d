import { AsyncLocalStorage } from 'node:async_hooks'
import { tracingChannel } from 'node:diagnostics_channel'
import { context, SpanStatusCode, trace } from '@opentelemetry/api'
import { tracingChannels } from 'fastify-sessions'

/**
 * Turns the session plugin's tracing channels into OpenTelemetry spans: `session.load`,
 * `session.commit` and `session.store.<operation>`, the store calls nested in the load or
 * commit that made them. Returns a function that stops.
 */
export function sessionSpans (tracer = trace.getTracer('fastify-sessions')) {
  const spans = new WeakMap()
  const parents = new AsyncLocalStorage()
  const stops = Object.entries(tracingChannels).map(([kind, name]) => {
    const channel = tracingChannel(name)
    // Bound to `start`: what the load or commit goes on to do runs with its span as the parent.
    channel.start.bindStore(parents, (message) => {
      const parent = parents.getStore() ?? context.active()
      const span = tracer.startSpan(spanName(kind, message), { attributes: attributesOf(message) }, parent)
      spans.set(message, span)
      return trace.setSpan(parent, span)
    })
    // A subscriber must never throw: work that started before it subscribed has no span.
    const finish = (message) => {
      spans.get(message)?.setAttributes(attributesOf(message)).end()
    }
    const handlers = {
      start () {},
      end (message) { if (!message.async) finish(message) },
      asyncStart () {},
      asyncEnd: finish,
      error (message) {
        const span = spans.get(message)
        span?.recordException(message.error)
        span?.setStatus({ code: SpanStatusCode.ERROR, message: message.error.message })
      }
    }
    channel.subscribe(handlers)
    return () => {
      channel.unsubscribe(handlers)
      channel.start.unbindStore(parents)
    }
  })
  return () => stops.forEach((stop) => stop())
}

function spanName (kind, message) {
  return kind === 'store' ? `session.store.${message.operation}` : `session.${kind}`
}

// Messages never hold an id, a key, a cookie or session data: every field can be an attribute.
function attributesOf ({ store, operation, trigger, outcome, reason, conflicts }) {
  const attributes = { 'session.store': store, 'session.operation': operation, 'session.trigger': trigger,
    'session.outcome': outcome, 'session.reason': reason, 'session.conflicts': conflicts }
  return Object.fromEntries(Object.entries(attributes).filter(([, value]) => value !== undefined))
}

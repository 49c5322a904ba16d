// Subscribes to every tracing channel of the plugin with handlers that do nothing, so that
// instructions.mjs --import lib/trace-subscriber.mjs measures what publishing itself costs.
import { tracingChannel } from 'node:diagnostics_channel'

const nothing = () => {}
for (const name of ['fastify-sessions:load', 'fastify-sessions:commit', 'fastify-sessions:store']) {
  tracingChannel(name).subscribe({ start: nothing, end: nothing, asyncStart: nothing, asyncEnd: nothing, error: nothing })
}

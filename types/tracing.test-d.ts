import { tracingChannel } from 'node:diagnostics_channel'
import { expectAssignable, expectError, expectNotAssignable, expectType } from 'tsd'
import { tracingChannels, type CommitTrace, type LoadTrace, type StoreOperation, type StoreTrace, type TraceMessage } from '..'

// The channel names are literal types, usable where a string is.
expectType<'fastify-sessions:load'>(tracingChannels.load)
expectType<'fastify-sessions:commit'>(tracingChannels.commit)
expectType<'fastify-sessions:store'>(tracingChannels.store)
expectError(tracingChannels.missing)

tracingChannel<unknown, LoadTrace>(tracingChannels.load).subscribe({
  start (message) { expectType<string>(message.store) },
  end (message) { expectType<boolean>(message.async) },
  asyncStart () {},
  asyncEnd (message) {
    expectType<'found' | 'fresh' | 'refused' | undefined>(message.outcome)
    expectType<string | undefined>(message.reason)
  },
  error (message) { expectType<unknown>(message.error) }
})

declare const commit: CommitTrace
expectType<'end' | 'save' | 'update'>(commit.trigger)
expectType<'written' | 'touched' | 'nothing' | undefined>(commit.outcome)
expectType<number>(commit.conflicts)

declare const store: StoreTrace
expectType<StoreOperation>(store.operation)
expectAssignable<StoreOperation>('listUser')
expectNotAssignable<StoreOperation>('read')
expectAssignable<TraceMessage>(store)
// Messages never hold an id, a cookie or data: there is no field for them.
expectError(store.id)
expectError(commit.data)

import createError from '@fastify/error'

// Every error a user of the plugin can meet. The README lists each code; a test keeps both in step.

export const InvalidOptionError = createError(
  'FST_SESS_INVALID_OPTION',
  'fastify-sessions: invalid option "%s": %s',
  500,
  TypeError
)

export const SessionDestroyedError = createError(
  'FST_SESS_DESTROYED',
  'fastify-sessions: the session was destroyed earlier in this request; %s() is not allowed',
  500
)

export const InvalidKeyError = createError(
  'FST_SESS_INVALID_KEY',
  'fastify-sessions: %s',
  500,
  TypeError
)

export const NotSerializableError = createError(
  'FST_SESS_NOT_SERIALIZABLE',
  'fastify-sessions: the value of session key "%s" cannot be stored as JSON: %s',
  500,
  TypeError
)

export const StoreUnavailableError = createError(
  'FST_SESS_STORE_UNAVAILABLE',
  'fastify-sessions: the session store failed: %s',
  503
)

export const SessionConflictError = createError(
  'FST_SESS_CONFLICT',
  'fastify-sessions: %s',
  409
)

export const CookieTooLargeError = createError(
  'FST_SESS_COOKIE_TOO_LARGE',
  'fastify-sessions: the session cookie would be %d bytes, over the %d-byte limit; keep less in the session or use a server-side store',
  500,
  RangeError
)

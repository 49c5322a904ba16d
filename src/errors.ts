import createError from '@fastify/error'

// Every error a user of the plugin can meet, each with a code and a fixed message template.
// The README lists each code; a test keeps both in step. Messages reach HTTP clients, so they
// never carry a session id, a cookie, session data or a backend's own error text (that goes
// in `cause`, which is logged, not sent).

export const InvalidOptionError = createError(
  'FST_SESS_INVALID_OPTION',
  'fastify-sessions: invalid option "%s": %s',
  500,
  TypeError
)

/**
 * An express-session store given as it is: its methods call back instead of returning
 * promises, and it has no compare-and-set. Thrown at registration, naming the option.
 */
export const ExpressStoreError = createError(
  'FST_SESS_EXPRESS_STORE',
  'fastify-sessions: invalid option "%s": an express-session store takes callbacks and has no compare-and-set; wrap it with fromExpressStore(store), or use a native store',
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
  'fastify-sessions: %s is not a usable session key',
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
  'fastify-sessions: the session store %s %s',
  503
)

export const SessionConflictError = createError(
  'FST_SESS_CONFLICT',
  'fastify-sessions: the session changed under this request: %s',
  409
)

export const CookieTooLargeError = createError(
  'FST_SESS_COOKIE_TOO_LARGE',
  'fastify-sessions: the session cookie would be %d bytes, over the %d-byte limit; keep less in the session or use a server-side store',
  500,
  RangeError
)

export const InsideUpdateError = createError(
  'FST_SESS_IN_UPDATE',
  'fastify-sessions: %s() cannot be called inside an update() function; update() commits what its function changes',
  500
)

export const InvalidUserError = createError(
  'FST_SESS_INVALID_USER',
  'fastify-sessions: %s is not a usable user id: use a non-empty string or a number',
  500,
  TypeError
)

export const NoUserIndexError = createError(
  'FST_SESS_NO_USER_INDEX',
  'fastify-sessions: %s needs %s',
  500
)

export const InvalidStoreKeyError = createError(
  'FST_SESS_INVALID_STORE_KEY',
  'fastify-sessions: %s accepts only SHA-256 digests in base64url (43 characters) as keys, not %s',
  500,
  TypeError
)

/**
 * Thrown by a store's `get` for a record it holds but cannot decode (truncated or foreign
 * data). The plugin answers with a fresh session, deletes the record and logs a warning;
 * it never reaches a client.
 */
export const UnusableRecordError = createError(
  'FST_SESS_UNUSABLE_RECORD',
  'fastify-sessions: the stored session record cannot be used: %s',
  500
)

/**
 * A store refused a record for its size (memcached's item size limit). Not an outage, so it
 * is not FST_SESS_STORE_UNAVAILABLE: the same write would fail again.
 */
export const RecordTooLargeError = createError(
  'FST_SESS_RECORD_TOO_LARGE',
  'fastify-sessions: the session record is %d bytes, more than the store accepts (%s); keep less in the session',
  500,
  RangeError
)

/**
 * An unsafe-method request a browser marked as coming from another site (or, from a browser
 * too old to say, whose Origin is not this host). The message names no header: what was
 * refused and why goes to the `debug` log line.
 */
export const CrossOriginError = createError(
  'FST_SESS_CROSS_ORIGIN',
  'fastify-sessions: cross-origin request refused',
  403
)

/** An unsafe-method request without a valid CSRF token where the route requires one. */
export const CsrfTokenError = createError(
  'FST_SESS_CSRF_TOKEN',
  'fastify-sessions: missing or invalid CSRF token',
  403
)

/**
 * A session without a way to send a Set-Cookie (from sessions.load(), or in a websocket
 * handler after the upgrade) was asked for something only a new cookie makes last: storing a
 * new session, regenerate(), a CookieStore change, cookie options.
 */
export const CookieUndeliverableError = createError(
  'FST_SESS_COOKIE_UNDELIVERABLE',
  'fastify-sessions: %s() needs to send a new session cookie, and %s',
  500
)

/** sessions.load() was given something other than a raw Node request (socket.io's socket, not socket.request). */
export const NotARequestError = createError(
  'FST_SESS_NOT_A_REQUEST',
  'fastify-sessions: sessions.load() needs a raw Node request (an IncomingMessage), not %s',
  500,
  TypeError
)

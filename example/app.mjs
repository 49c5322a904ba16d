// The demo site behind `npm start`. It imports the package by its own name, so running it
// also proves that the ESM entry point works (Node resolves the name through "exports").
//
// Session data used here (in TypeScript you would declare it by merging into SessionData):
//   user:   string    the logged-in username (userKey: logout everywhere and the device list)
//   device: string    the browser that logged in, shown in the device list
//   login:  string    a random id of this login, to mark "this browser" in the device list
//   cart:   string[]  ids from ITEMS, one entry per unit added
import { randomUUID } from 'node:crypto'
import Fastify from 'fastify'
import fastifySessions from 'fastify-sessions'
import { cartSummary, escapeHtml, expiredFormPage, ITEMS, page, renderAccount, renderCart, renderFlashes } from './pages.mjs'
import { storeFromEnv } from './store-from-env.mjs'

export { escapeHtml, ITEMS }

/** Used only when SESSION_SECRET is not set. Anyone reading this file can forge sessions. */
export const DEMO_SECRET = 'fastify-sessions demo secret: replace me in production!'

const MAX_USERNAME = 64
const MAX_DEVICE = 60
const MAX_CART = 50

function parseForm (request, body, done) {
  // Object.fromEntries defines own properties, so a "__proto__" field is just a field.
  done(null, Object.fromEntries(new URLSearchParams(body)))
}

function field (body, name) {
  const value = body !== null && typeof body === 'object' ? body[name] : undefined
  return typeof value === 'string' ? value : undefined
}

// The "add to cart" script asks for JSON; a plain form post gets a redirect.
function wantsJson (request) {
  return request.headers.accept?.includes('application/json') === true
}

function redirectHome (reply) {
  return reply.code(303).header('location', '/').send()
}

async function homePage (app, session, storeName, listsUsers) {
  // The forms carry a token bound to this session. Asking for one stores the session, so even
  // an anonymous visit gets a cookie: the login form's token must outlive this request.
  const token = session.csrfToken()
  const user = session.get('user')
  const login = session.get('login')
  const sessions = user !== undefined && listsUsers
    ? await app.sessions.listSessions(user, { meta: (data) => ({ device: data.device, current: data.login === login }) })
    : undefined
  return page('fastify-sessions demo', `<h1>fastify-sessions demo</h1>
${renderFlashes(session.flashes())}
<p class="note">Sessions are kept in the <strong class="store">${escapeHtml(storeName)}</strong> store.</p>
<h2>Account</h2>
${renderAccount({ user, sessions, token, maxUsername: MAX_USERNAME })}
<h2>Cart</h2>
${renderCart(session.get('cart') ?? [], token)}`)
}

async function login (request, reply) {
  const username = field(request.body, 'username')?.trim() ?? ''
  if (username === '' || username.length > MAX_USERNAME || field(request.body, 'password') === undefined) {
    request.session.flash('error', `Enter a username (up to ${MAX_USERNAME} characters) and a password.`)
    return redirectHome(reply)
  }
  // A new id and fresh data at login defeat session fixation; the cart is carried over by name.
  await request.session.regenerate(['cart'])
  request.session.set('user', username)
  request.session.set('device', (request.headers['user-agent'] || 'unknown browser').slice(0, MAX_DEVICE))
  request.session.set('login', randomUUID())
  request.session.flash('info', `Welcome, ${username}`)
  return redirectHome(reply)
}

// Two tabs adding at once must both keep their item: update() computes the new cart from the
// stored one under compare-and-set, and runs again if another request got there first.
async function addToCart (request, reply) {
  const item = field(request.body, 'item')
  if (item === undefined || !Object.hasOwn(ITEMS, item)) {
    if (wantsJson(request)) return reply.code(400).send({ message: 'Unknown item.' })
    request.session.flash('error', 'Unknown item.')
    return redirectHome(reply)
  }
  let full = false
  await request.session.update((s) => {
    const cart = s.get('cart') ?? []
    full = cart.length >= MAX_CART
    if (!full) s.set('cart', [...cart, item])
  })
  const message = full ? `The cart holds at most ${MAX_CART} items.` : undefined
  if (wantsJson(request)) return { ...cartSummary(request.session.get('cart')), message }
  if (full) request.session.flash('error', message)
  return redirectHome(reply)
}

// Logging out starts a new, empty session rather than destroying this one, so that it can
// carry the "logged out" flash to the next page.
async function logout (request, reply) {
  await request.session.regenerate()
  request.session.flash('info', 'You are logged out.')
  return redirectHome(reply)
}

// Ends every session of this user, in every browser. This browser moves to a new anonymous
// session first (a revoked one could not carry the flash), stored before the revocation: a
// session regenerated while its user is being revoked is refused, by design.
function logoutEverywhere (app) {
  return async (request, reply) => {
    const user = request.session.get('user')
    await request.session.regenerate()
    if (user === undefined) return redirectHome(reply)
    await request.session.save()
    const others = await app.sessions.revokeUser(user)
    // A store without a per-user index ends them by a stamp and cannot count them.
    request.session.flash('info', others === undefined
      ? 'You are logged out everywhere.'
      : `You are logged out everywhere: this browser and ${others} other session${others === 1 ? '' : 's'}.`)
    return redirectHome(reply)
  }
}

// A form whose token no longer matches the session (it was rendered before a log out, here or
// in another tab) is refused by the plugin with FST_SESS_CSRF_TOKEN; say so in words.
function formExpired (error, request, reply) {
  if (error.code !== 'FST_SESS_CSRF_TOKEN') throw error
  reply.code(403)
  if (wantsJson(request)) return { code: error.code, message: 'This page has expired: reload it.' }
  return reply.type('text/html; charset=utf-8').send(expiredFormPage())
}

function registerRoutes (app, storeName, listsUsers) {
  app.get('/', async (request, reply) => {
    // Personal content: no shared cache may keep it, cookie or not.
    reply.type('text/html; charset=utf-8').header('cache-control', 'no-store')
    return homePage(app, request.session, storeName, listsUsers)
  })
  app.post('/login', login)
  app.post('/cart', addToCart)
  app.post('/logout', logout)
  app.post('/logout-everywhere', logoutEverywhere(app))
  app.get('/healthz', { config: { session: false } }, async () => ({ ok: true }))
}

/**
 * Builds the demo app without listening, so tests can use `app.inject()`.
 * `secret` defaults to SESSION_SECRET, then to DEMO_SECRET with a warning; the store is the one
 * `env.SESSION_STORE` names (see store-from-env.mjs), closed with the app.
 */
export async function buildApp ({ secret = process.env.SESSION_SECRET, logger = false, env = process.env } = {}) {
  const app = Fastify({ logger })
  const demoSecret = secret === undefined || secret === ''
  if (demoSecret) {
    app.log.warn('SESSION_SECRET is not set: using the built-in demo secret. Set SESSION_SECRET (at least 32 random characters) in production, or anyone can forge sessions.')
  }
  const { name, store, close } = await storeFromEnv(env, app.log)
  app.addHook('onClose', close)
  app.log.info({ store: name }, 'session store')
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 4096 }, parseForm)
  app.setErrorHandler(formExpired)
  // Cross-origin protection is on by default: a form another site posts here is refused with
  // 403 before any route runs. token: true adds a session-bound token to every POST, for
  // browsers too old to say where a request comes from.
  const options = { secret: demoSecret ? DEMO_SECRET : secret, store, userKey: 'user', csrf: { token: true } }
  try {
    await app.register(fastifySessions, options)
  } catch (err) {
    // A failed registration leaves no app to close: release the store (and its client) here.
    await close()
    throw err
  }
  registerRoutes(app, name, typeof store.listUser === 'function')
  return app
}

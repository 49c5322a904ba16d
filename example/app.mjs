// The demo site behind `npm start`. It imports the package by its own name, so running it
// also proves that the ESM entry point works (Node resolves the name through "exports").
//
// Session data used here (in TypeScript you would declare it by merging into SessionData):
//   user:   string    the logged-in username (userKey: logout everywhere and the device list)
//   device: string    the browser that logged in, shown in the device list
//   visits: number    home page views in this session
//   cart:   string[]  ids from ITEMS, one entry per unit added
import Fastify from 'fastify'
import fastifySessions from 'fastify-sessions'

/** Used only when SESSION_SECRET is not set. Anyone reading this file can forge sessions. */
export const DEMO_SECRET = 'fastify-sessions demo secret: replace me in production!'

export const ITEMS = Object.freeze({
  apple: 'Apple',
  bread: 'Bread',
  coffee: 'Coffee',
  tea: 'Tea'
})

const MAX_USERNAME = 64
const MAX_DEVICE = 60
const MAX_CART = 50

export function escapeHtml (value) {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

function parseForm (request, body, done) {
  // Object.fromEntries defines own properties, so a "__proto__" field is just a field.
  done(null, Object.fromEntries(new URLSearchParams(body)))
}

function field (body, name) {
  const value = body !== null && typeof body === 'object' ? body[name] : undefined
  return typeof value === 'string' ? value : undefined
}

function page (title, content) {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
  body { font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.5 }
  .flash { padding: .5rem 1rem; border-radius: 4px; margin: .5rem 0 }
  .flash-info { background: #e6f4ea } .flash-error { background: #fce8e6 }
  .note { color: #666; font-size: .9em }
  form.inline { display: inline }
</style>
</head>
<body>
${content}
</body>
</html>
`
}

function renderFlashes (all) {
  return Object.entries(all)
    .flatMap(([type, messages]) => messages.map((message) =>
      `<p class="flash flash-${escapeHtml(type)}" role="status">${escapeHtml(message)}</p>`))
    .join('\n')
}

function time (ms) {
  return new Date(ms).toISOString().replace('T', ' ').slice(0, 19) + ' UTC'
}

// What fastify.sessions.listSessions() gives: times and the metadata picked below, no ids.
function renderDevices (sessions) {
  const rows = sessions.map((s) =>
    `<li class="device">${escapeHtml(s.device ?? 'unknown browser')}: signed in ${time(s.createdAt)}, last active ${time(s.lastActive)}</li>`)
  return `<h3>Your sessions (${sessions.length})</h3>
<ul class="devices">
${rows.join('\n')}
</ul>
<form method="post" action="/logout-everywhere"><button type="submit">Log out everywhere</button></form>`
}

function renderUser (user, sessions) {
  if (user !== undefined) {
    return `<p>Logged in as <strong class="user">${escapeHtml(user)}</strong>.</p>
<form method="post" action="/logout"><button type="submit">Log out</button></form>
${renderDevices(sessions)}`
  }
  return `<p>You are not logged in.</p>
<form method="post" action="/login">
  <label>Username <input name="username" required maxlength="${MAX_USERNAME}" autocomplete="username"></label>
  <label>Password <input name="password" type="password" autocomplete="current-password"></label>
  <button type="submit">Log in</button>
</form>
<p class="note">This is a demo: any username works and the password is not checked.</p>`
}

function renderCart (cart) {
  // Only ids checked against ITEMS ever enter the cart.
  const counts = new Map()
  for (const id of cart) counts.set(id, (counts.get(id) ?? 0) + 1)
  const list = counts.size === 0
    ? '<p class="cart-empty">Your cart is empty.</p>'
    : `<ul class="cart">\n${[...counts].map(([id, n]) =>
        `<li>${escapeHtml(ITEMS[id])} × ${n}</li>`).join('\n')}\n</ul>`
  const buttons = Object.entries(ITEMS).map(([id, label]) =>
    `<form class="inline" method="post" action="/cart"><button name="item" value="${escapeHtml(id)}">Add ${escapeHtml(label)}</button></form>`)
  return `${list}\n<p>${buttons.join('\n')}</p>`
}

// A count computed from the stored count: update() keeps every visit when pages load in
// parallel (a plain get and set would be refused with 409 when two tabs race).
async function countVisit (session) {
  let visits
  await session.update((s) => {
    visits = (s.get('visits') ?? 0) + 1
    s.set('visits', visits)
  })
  return visits
}

async function homePage (app, session) {
  // An anonymous first visit stays read-only, so it creates no session and sends no cookie.
  // Visits are counted once the session exists (after a login or a first cart item).
  const visits = session.isNew ? undefined : await countVisit(session)
  const user = session.get('user')
  const sessions = user === undefined ? [] : await app.sessions.listSessions(user, { meta: (data) => ({ device: data.device }) })
  const counter = visits === undefined
    ? '<p class="visits">No session yet: visits are counted once you log in or add something to the cart.</p>'
    : `<p class="visits">Visits in this session: <strong>${visits}</strong></p>`
  return page('fastify-sessions demo', `<h1>fastify-sessions demo</h1>
${renderFlashes(session.flashes())}
<h2>Account</h2>
${renderUser(user, sessions)}
<h2>Visits</h2>
${counter}
<h2>Cart</h2>
${renderCart(session.get('cart') ?? [])}`)
}

function redirectHome (reply) {
  return reply.code(303).header('location', '/').send()
}

function registerRoutes (app) {
  app.get('/', async (request, reply) => {
    // Personal content: no shared cache may keep it, cookie or not.
    reply.type('text/html; charset=utf-8').header('cache-control', 'no-store')
    return homePage(app, request.session)
  })

  app.post('/login', async (request, reply) => {
    const username = field(request.body, 'username')?.trim() ?? ''
    if (username === '' || username.length > MAX_USERNAME || field(request.body, 'password') === undefined) {
      request.session.flash('error', `Enter a username (up to ${MAX_USERNAME} characters) and a password.`)
      return redirectHome(reply)
    }
    // A new id and fresh data at login defeat session fixation; the cart and the visit
    // count are carried over by name.
    await request.session.regenerate(['cart', 'visits'])
    request.session.set('user', username)
    request.session.set('device', (request.headers['user-agent'] ?? 'unknown browser').slice(0, MAX_DEVICE))
    request.session.flash('info', `Welcome, ${username}`)
    return redirectHome(reply)
  })

  app.post('/cart', async (request, reply) => {
    const item = field(request.body, 'item')
    if (item === undefined || !Object.hasOwn(ITEMS, item)) {
      request.session.flash('error', 'Unknown item.')
      return redirectHome(reply)
    }
    // Two tabs adding at once must both keep their item: the new cart is computed from the
    // stored one under compare-and-set, and recomputed if another request got there first.
    let full = false
    await request.session.update((s) => {
      const cart = s.get('cart') ?? []
      full = cart.length >= MAX_CART
      if (!full) s.set('cart', [...cart, item])
    })
    if (full) request.session.flash('error', `The cart holds at most ${MAX_CART} items.`)
    return redirectHome(reply)
  })

  app.post('/logout', async (request, reply) => {
    await request.session.destroy()
    return redirectHome(reply)
  })

  // Ends every session of this user, in every browser: this one is logged out too.
  app.post('/logout-everywhere', async (request, reply) => {
    const user = request.session.get('user')
    if (user !== undefined) {
      await request.session.destroy()
      await app.sessions.revokeUser(user)
    }
    return redirectHome(reply)
  })

  app.get('/healthz', { config: { session: false } }, async () => ({ ok: true }))
}

/**
 * Builds the demo app without listening, so tests can use `app.inject()`.
 * `secret` defaults to SESSION_SECRET, then to DEMO_SECRET with a warning.
 */
export async function buildApp ({ secret = process.env.SESSION_SECRET, logger = false } = {}) {
  const app = Fastify({ logger })
  const demoSecret = secret === undefined || secret === ''
  if (demoSecret) {
    app.log.warn('SESSION_SECRET is not set: using the built-in demo secret. Set SESSION_SECRET (at least 32 random characters) in production, or anyone can forge sessions.')
  }
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 4096 }, parseForm)
  // Cross-origin protection is on by default: a form another site posts here (to /logout, say)
  // is refused with 403, so the forms below need no CSRF token for modern browsers.
  await app.register(fastifySessions, { secret: demoSecret ? DEMO_SECRET : secret, userKey: 'user' })
  registerRoutes(app)
  return app
}

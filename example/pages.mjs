// The demo's HTML: plain server-rendered pages, one small inline script. Every value that comes
// from a user or a store goes through escapeHtml().

export const ITEMS = Object.freeze({
  apple: 'Apple',
  bread: 'Bread',
  coffee: 'Coffee',
  tea: 'Tea'
})

export function escapeHtml (value) {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

export function page (title, content) {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
  body { font-family: system-ui, sans-serif; max-width: 42rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.5 }
  .flash { padding: .5rem 1rem; border-radius: 4px; margin: .5rem 0 }
  .flash-info { background: #e6f4ea } .flash-error { background: #fce8e6 }
  .note { color: #666; font-size: .9em }
  form.inline { display: inline }
  td { padding: .1rem .75rem .1rem 0 }
</style>
</head>
<body>
${content}
</body>
</html>
`
}

function csrfField (token) {
  return `<input type="hidden" name="_csrf" value="${escapeHtml(token)}">`
}

export function renderFlashes (all) {
  return Object.entries(all)
    .flatMap(([type, messages]) => messages.map((message) =>
      `<p class="flash flash-${escapeHtml(type)}" role="status">${escapeHtml(message)}</p>`))
    .join('\n')
}

function time (ms) {
  return new Date(ms).toISOString().replace('T', ' ').slice(0, 19) + ' UTC'
}

// `sessions` is what fastify.sessions.listSessions() gives (times and the metadata the app
// picked, never an id), or undefined when the store keeps no per-user index.
function renderDevices (sessions, token) {
  const logoutEverywhere = `<form method="post" action="/logout-everywhere">${csrfField(token)}<button type="submit">Log out everywhere</button></form>`
  if (sessions === undefined) {
    return `<h3>Your sessions</h3>
<p class="no-index note">This store keeps no per-user index, so it cannot list your sessions.
"Log out everywhere" still ends them all, by a per-user stamp checked when a session is loaded.</p>
${logoutEverywhere}`
  }
  const rows = sessions.map((s) =>
    `<li class="device">${escapeHtml(s.device)}${s.current ? ' <strong>(this browser)</strong>' : ''}: signed in ${time(s.createdAt)}, last active ${time(s.lastActive)}</li>`)
  return `<h3>Your sessions (${sessions.length})</h3>
<ul class="devices">
${rows.join('\n')}
</ul>
${logoutEverywhere}`
}

export function renderAccount ({ user, sessions, token, maxUsername }) {
  if (user !== undefined) {
    return `<p>Logged in as <strong class="user">${escapeHtml(user)}</strong>.</p>
<form method="post" action="/logout">${csrfField(token)}<button type="submit">Log out</button></form>
${renderDevices(sessions, token)}`
  }
  return `<p>You are not logged in.</p>
<form method="post" action="/login">
  ${csrfField(token)}
  <label>Username <input name="username" required maxlength="${maxUsername}" autocomplete="username"></label>
  <label>Password <input name="password" type="password" autocomplete="current-password"></label>
  <button type="submit">Log in</button>
</form>
<p class="note">This is a demo: any username works and the password is not checked.
Log in as the same user in another browser (or a private window) to see both in "Your sessions".</p>`
}

/** Units of each item in the cart, and their total. Only ids checked against ITEMS ever enter it. */
export function cartSummary (cart) {
  const counts = Object.fromEntries(Object.keys(ITEMS).map((id) => [id, 0]))
  for (const id of cart) counts[id] += 1
  return { counts, total: cart.length }
}

// Without JavaScript each button posts its form and the page reloads. With it, the script posts
// the same form with fetch() and leaves the page in place, so clicks in two tabs really overlap:
// that is what request.session.update() is for. `data-pending` counts requests still in flight.
const CART_SCRIPT = `<script>
(() => {
  const cart = document.getElementById('cart')
  const status = document.getElementById('cart-status')
  let pending = 0
  const show = ({ counts, total }) => {
    // Answers can arrive out of order: an older one (a smaller cart) must not hide a newer one.
    const shown = document.getElementById('cart-total')
    if (total < Number(shown.textContent)) return
    shown.textContent = total
    for (const [id, n] of Object.entries(counts)) cart.querySelector('[data-count="' + id + '"]').textContent = n
  }
  for (const form of document.querySelectorAll('form.add')) {
    form.addEventListener('submit', async (event) => {
      event.preventDefault()
      cart.dataset.pending = ++pending
      try {
        const res = await fetch(form.action, { method: 'POST', headers: { accept: 'application/json' }, body: new URLSearchParams(new FormData(form)) })
        const body = await res.json()
        if (res.ok) show(body)
        status.textContent = body.message ?? ''
      } catch (err) {
        status.textContent = 'Could not reach the server: ' + err.message
      } finally {
        cart.dataset.pending = --pending
      }
    })
  }
})()
</script>`

export function renderCart (cart, token) {
  const { counts, total } = cartSummary(cart)
  const rows = Object.entries(ITEMS).map(([id, label]) => `<tr>
  <td>${escapeHtml(label)}</td><td data-count="${escapeHtml(id)}">${counts[id]}</td>
  <td><form class="add inline" method="post" action="/cart">${csrfField(token)}<input type="hidden" name="item" value="${escapeHtml(id)}"><button type="submit">Add ${escapeHtml(label)}</button></form></td>
</tr>`)
  return `<table id="cart" data-pending="0">
${rows.join('\n')}
</table>
<p>Items in the cart: <strong id="cart-total">${total}</strong></p>
<p id="cart-status" class="note" role="status"></p>
<p class="note">Open this page in two tabs and click in both as fast as you can: every click is kept.</p>
${CART_SCRIPT}`
}

export function expiredFormPage () {
  return page('Form expired', `<h1>This form has expired</h1>
<p>The page it came from belongs to a session that has ended (a log out, perhaps in another tab).
<a href="/">Back to the demo</a>, and try again.</p>`)
}

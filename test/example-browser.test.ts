import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { FastifyInstance } from 'fastify'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { chromiumUnavailable, launchChromium } from './helpers/browser'

// The demo in a real headless Chromium: its forms, its tokens and its fetch() script, with
// two tabs of one browser racing to fill the cart and two browsers of one user.

interface ExampleApp {
  buildApp (opts?: { secret?: string, env?: Record<string, string> }): Promise<FastifyInstance>
}

const appUrl: string = pathToFileURL(resolve(__dirname, '..', 'example', 'app.mjs')).href
const SECRET = 'example-browser-test-secret-long-enough-0123456789'
const CLICKS = 10

interface Demo {
  base: string
  /** The most /cart requests the server was working on at once. */
  inFlight: { now: number, max: number }
}

/**
 * The demo listening on a free loopback port, on the store `env` names. With `overlap`, the
 * first cart request waits, its session loaded, until a second one is in flight: how fast the
 * store answers then cannot decide whether the race happens.
 */
async function listen (t: tap.Test, env: Record<string, string> = {}, overlap = false): Promise<Demo> {
  const { buildApp } = (await import(appUrl)) as ExampleApp
  const app = await buildApp({ secret: SECRET, env })
  t.teardown(() => app.close())
  const inFlight = { now: 0, max: 0 }
  app.addHook('onRequest', async (request) => {
    if (request.url !== '/cart') return
    inFlight.now++
    inFlight.max = Math.max(inFlight.max, inFlight.now)
  })
  app.addHook('onResponse', async (request) => {
    if (request.url === '/cart') inFlight.now--
  })
  let second: (() => void) | undefined
  const secondArrived = new Promise<void>((resolve) => { second = resolve })
  app.addHook('preHandler', async (request) => {
    if (!overlap || request.url !== '/cart') return
    if (inFlight.now > 1) second?.()
    else await secondArrived
  })
  return { base: await app.listen({ port: 0, host: '127.0.0.1' }), inFlight }
}

async function text (page: Page, selector: string): Promise<string> {
  return (await page.locator(selector).textContent()) ?? ''
}

async function flashes (page: Page): Promise<string[]> {
  return await page.locator('p.flash').allTextContents()
}

async function logIn (context: BrowserContext, base: string, username: string): Promise<Page> {
  const page = await context.newPage()
  await page.goto(base)
  await page.fill('input[name=username]', username)
  await page.fill('input[name=password]', 'secret')
  await page.click('button:text("Log in")')
  await page.locator('strong.user').waitFor()
  return page
}

/**
 * Clicks "Add Apple" `CLICKS` times in each page, all at once, and waits for every answer. The
 * clicks are made inside the page, in one go: one at a time from here, each would be answered
 * before the next one started.
 */
async function race (pages: Page[]): Promise<void> {
  const button = 'form.add:has(input[value=apple]) button'
  await Promise.all(pages.map((page) => page.locator(button).evaluate((el: { click: () => void }, clicks: number) => {
    for (let i = 0; i < clicks; i++) el.click()
  }, CLICKS)))
  await Promise.all(pages.map((page) => page.locator('#cart[data-pending="0"]').waitFor()))
}

// MemoryStore answers a request within one turn of the event loop, so the server never works
// on two at once however the browser sends them; FileStore waits for the disk, so the clicks
// can race there (made sure of by holding the first until a second is in flight), and update()
// has compare-and-set conflicts to resolve.
const STORES = [
  { name: 'memory', env: async (): Promise<Record<string, string>> => ({}), overlaps: false, listsUsers: true },
  { name: 'file', env: async (t: tap.Test) => ({ SESSION_STORE: 'file', SESSION_DIR: await tempDir(t) }), overlaps: true, listsUsers: false }
]

async function tempDir (t: tap.Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'fastify-sessions-browser-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

// One browser for the file; each context in it is a fresh profile, a device of its own.
let browser: Browser

function raceAndRevoke (store: typeof STORES[number]): void {
  t.test(`${store.name} store: two tabs fill one cart at once, and log out everywhere reaches another browser`, async (t) => {
    const { base, inFlight } = await listen(t, await store.env(t), store.overlaps)

    const laptop = await browser.newContext()
    const tab1 = await logIn(laptop, base, 'alice')
    t.same(await flashes(tab1), ['Welcome, alice'])
    const tab2 = await laptop.newPage()
    await tab2.goto(base)
    t.equal(await text(tab2, 'strong.user'), 'alice', 'the second tab shares the session')
    t.same(await flashes(tab2), [], 'the welcome was shown once, in the first tab')

    await race([tab1, tab2])
    if (store.overlaps) t.ok(inFlight.max > 1, `the requests overlapped (at most ${inFlight.max} at once)`)
    await tab1.reload()
    t.equal(await text(tab1, '#cart-total'), String(2 * CLICKS), 'the cart holds every click of both tabs')
    t.equal(await text(tab1, '[data-count=apple]'), String(2 * CLICKS))

    const phone = await browser.newContext()
    const phoneTab = await logIn(phone, base, 'alice')
    t.equal(await text(phoneTab, '#cart-total'), '0', 'a second device of the same user, with a cart of its own')
    if (store.listsUsers) {
      t.match(await text(phoneTab, 'h3'), 'Your sessions (2)')
      await tab1.reload()
      t.match(await text(tab1, 'h3'), 'Your sessions (2)', 'both devices listed on both')
    }

    await phoneTab.click('button:text("Log out everywhere")')
    await phoneTab.locator('form[action="/login"]').waitFor()
    t.same(await flashes(phoneTab), [store.listsUsers
      ? 'You are logged out everywhere: this browser and 1 other session.'
      : 'You are logged out everywhere.'])

    // A tab still showing the old page: its token belongs to the ended session.
    await tab1.click('form.add:has(input[value=apple]) button')
    await tab1.locator('#cart-status:text("This page has expired: reload it.")').waitFor()
    t.pass('a click in a tab left open says the page expired')

    await tab2.reload()
    t.equal(await tab2.locator('strong.user').count(), 0, 'the laptop is logged out too')
    t.match(await text(tab2, 'body'), 'You are not logged in.')
    t.equal(await text(tab2, '#cart-total'), '0')

    await phoneTab.reload()
    t.same(await flashes(phoneTab), [], 'the flash is shown once')
    t.match(await text(phoneTab, 'body'), 'You are not logged in.')
  })
}

function forgedForm (): void {
  t.test('a form on another site cannot log the user out; the own one can, with a flash once', async (t) => {
    const { base } = await listen(t)
    const context = await browser.newContext()
    const page = await logIn(context, base, 'bob')

    // A page of another site, served by the browser's router: it posts a form to the demo.
    await context.route('http://evil.test/', (route) => route.fulfill({
      contentType: 'text/html',
      body: `<form method="post" action="${base}/logout"><button>Win a prize</button></form>`
    }))
    const evil = await context.newPage()
    await evil.goto('http://evil.test/')
    const [refused] = await Promise.all([evil.waitForResponse(`${base}/logout`), evil.click('button')])
    t.equal(refused.status(), 403)
    t.equal((await refused.json()).code, 'FST_SESS_CROSS_ORIGIN')
    await page.reload()
    t.equal(await text(page, 'strong.user'), 'bob', 'still logged in')

    await page.click('button:text("Log out")')
    await page.locator('form[action="/login"]').waitFor()
    t.same(await flashes(page), ['You are logged out.'])
    await page.reload()
    t.same(await flashes(page), [], 'the flash is shown once')
  })
}

if (!chromiumUnavailable(t)) {
  t.before(async () => { browser = await launchChromium(t) })
  for (const store of STORES) raceAndRevoke(store)
  forgedForm()
}

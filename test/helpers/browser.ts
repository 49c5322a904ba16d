// A real headless Chromium for the tests that need a browser, driven with playwright-core.
// It is the system's Chromium (Debian's /usr/bin/chromium, or one on the PATH), never a
// downloaded one; each context the tests open is a fresh profile, like a separate device.
import { accessSync, constants } from 'node:fs'
import { join } from 'node:path'
import { chromium, type Browser } from 'playwright-core'

// Quiet and quick: no first-run UI, no background traffic, no sandbox (the tests may run as root).
const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run'
]

function executable (path: string): boolean {
  try {
    accessSync(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/** The Chromium binary: `chromium` on the PATH, else Debian's, or undefined. */
export function chromiumPath (): string | undefined {
  const dirs = (process.env.PATH ?? '').split(':').filter((dir) => dir !== '')
  return [...dirs.map((dir) => join(dir, 'chromium')), '/usr/bin/chromium'].find(executable)
}

/**
 * True when the file must skip its browser tests: skipped with the reason printed, except under
 * CI=true, where a missing Chromium is a failure.
 */
export function chromiumUnavailable (t: tap.Test): boolean {
  if (chromiumPath() !== undefined) return false
  const reason = 'chromium is not installed (not on PATH nor /usr/bin/chromium)'
  if (process.env.CI === 'true') throw new Error(`browser tests cannot run under CI=true: ${reason}`)
  t.comment(`skipping the browser tests: ${reason}`)
  t.plan(0, reason)
  return true
}

/** A headless Chromium, closed when the test ends. */
export async function launchChromium (t: tap.Test): Promise<Browser> {
  const browser = await chromium.launch({ executablePath: chromiumPath(), args: ARGS })
  t.teardown(() => browser.close())
  return browser
}

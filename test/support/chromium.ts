/**
 * Debian's Chromium for browser tests, through playwright-core: one browser
 * per test file, never downloaded. Without it, browser tests are skipped with
 * the reason printed, except when `CI` is set: then they fail, so CI never
 * passes without running them.
 */

import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
/** Headless, and nothing that would reach the (closed) network. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export const chromiumMissing = !existsSync(CHROMIUM);
/** The `skip` option of a browser test: a reason, or `false`. */
export const chromiumSkip: string | false =
  chromiumMissing && !process.env.CI ? `no Chromium at ${CHROMIUM} (apt-get install chromium); set CI to make this a failure` : false;

let browser: Browser | undefined;

/** The file's browser, launched on first use. */
export async function launchChromium(): Promise<Browser> {
  if (chromiumMissing) throw new Error(`CI is set but Chromium is missing at ${CHROMIUM}: the browser tests must run in CI`);
  browser ??= await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  return browser;
}

export async function closeChromium(): Promise<void> {
  await browser?.close();
  browser = undefined;
}

/**
 * A real browser for the console tests: Debian's chromium, driven by
 * playwright-core (which downloads nothing), headless, in a fresh profile,
 * with the background networking a closed network refuses turned off.
 */
import fs from 'node:fs';
import { chromium, type BrowserContext } from 'playwright-core';
import { makeTempDir } from './temp-dirs';

export const CHROMIUM = process.env.KV_CHROMIUM ?? '/usr/bin/chromium';

export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * How long a console test waits for one thing on the page before it fails.
 * Long enough for Chromium on two cores shared with the other suite and its
 * server (under load, 10 s was not: a page that loads in a second took more),
 * short enough that a broken flow fails well within the test's timeout.
 */
export const PAGE_WAIT_MS = 30_000;

export function chromiumInstalled(): boolean {
  return fs.existsSync(CHROMIUM);
}

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

/** A browser with a fresh --user-data-dir (playwright passes it), removed on close. */
export async function launchBrowser(viewport = { width: 1280, height: 800 }): Promise<Browser> {
  const profile = makeTempDir('kv-chromium-');
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport,
  });
  return {
    context,
    close: async () => {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** `describe` when chromium is installed; otherwise skipped with a note, or a failure under KV_REQUIRE_ALL_CLIENTS=1 (CI). */
export function describeWithChromium(name: string, body: () => void): void {
  if (chromiumInstalled()) return describe(name, body);
  if (process.env.KV_REQUIRE_ALL_CLIENTS === '1')
    throw new Error(`${CHROMIUM} is required (KV_REQUIRE_ALL_CLIENTS=1): apt-get install chromium`);
  process.stdout.write(`skipping browser tests: no ${CHROMIUM} (apt-get install chromium)\n`);
  describe.skip(name, body);
}

/** Calls a KeyValueService method as JSON over the HTTP port at 127.0.0.1:`port` (the console's own protocol); it must answer 200. */
export async function callJson(port: number, method: string, body: unknown): Promise<Record<string, unknown>> {
  const response = await fetch(`http://127.0.0.1:${port}/kv.v1.KeyValueService/${method}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (response.status !== 200) throw new Error(`${method} answered HTTP ${response.status}: ${await response.text()}`);
  return (await response.json()) as Record<string, unknown>;
}

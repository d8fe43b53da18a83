/**
 * The console's live view when its Watch breaks: across a restart of the
 * server (same port, same data directory) it reconnects and goes on from the
 * revision after the last one it showed, so no change is shown twice or
 * missed; changes the server no longer keeps are named as a gap; the keys
 * are listed again.
 */
import type { Page } from 'playwright-core';
import { type Browser, callJson, describeWithChromium, launchBrowser, PAGE_WAIT_MS } from '../support/browser';
import { freePort } from '../support/free-port';
import { startServer, type RunningServer } from '../support/server-process';
import { makeTempDir } from '../support/temp-dirs';

let server: RunningServer;
let browser: Browser;
let page: Page;
let port: number;
let dataDir: string;

async function start(): Promise<void> {
  server = await startServer({
    dataDir,
    args: ['--http-listen', `127.0.0.1:${port}`, '--watch-progress-ms', '300', '--watch-history-changes', '10'],
  });
}

function call(method: string, body: unknown): Promise<Record<string, unknown>> {
  return callJson(port, method, body);
}

async function rows(): Promise<string[]> {
  return page.getByRole('table').locator('tbody tr').allTextContents();
}

async function waitForRows(count: number): Promise<string[]> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const found = await rows();
    if (found.length >= count) return found;
    if (Date.now() > deadline) throw new Error(`expected ${count} rows, have ${JSON.stringify(found)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describeWithChromium('the web console live view across a server restart', () => {
  beforeAll(async () => {
    port = await freePort();
    dataDir = makeTempDir('kv-console-restart-');
    await start();
    browser = await launchBrowser();
    page = await browser.context.newPage();
    // Each wait fails within PAGE_WAIT_MS (unless it says otherwise), so a broken flow fails the test, not the suite's timeout.
    page.setDefaultTimeout(PAGE_WAIT_MS);
  });

  afterAll(async () => {
    await browser?.close();
    expect(await server.stop()).toBe(0);
  });

  test('reconnects after a restart and resumes after the last revision shown, nothing twice or missed', async () => {
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.getByRole('button', { name: 'Live view' }).click();
    await page.getByText(/^Following; current to revision/).waitFor();
    await call('Set', { key: 'a/1', value: 1 });
    await waitForRows(1);

    expect(await server.stop()).toBe(0);
    await page.getByText(/reconnecting…/).waitFor();
    await start();
    // Written before the console is back: it must still show them.
    await call('Set', { key: 'a/2', value: 2 });
    await call('Delete', { key: 'a/1' });
    await page.getByText(/^Following; current to revision/).waitFor();
    await waitForRows(3);
    await call('Set', { key: 'a/3', value: 3 });
    await waitForRows(4);
    await new Promise((resolve) => setTimeout(resolve, 800));
    expect(await rows()).toEqual([
      expect.stringMatching(/^\d+seta\/33$/),
      expect.stringMatching(/^\d+deleteda\/1$/),
      expect.stringMatching(/^\d+seta\/22$/),
      expect.stringMatching(/^\d+seta\/11$/),
    ]);
  });

  test('keys that could not be listed while the server was away are listed once the live view reconnects', async () => {
    await call('Set', { key: 'c/1', value: 1 });
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.getByRole('button', { name: 'Folder c/' }).waitFor();
    await page.getByRole('button', { name: 'Live view' }).click();
    await page.getByText(/^Following; current to revision/).waitFor();
    expect(await server.stop()).toBe(0);
    await page.getByText(/reconnecting…/).waitFor();
    await page.getByRole('button', { name: 'Refresh' }).click();
    const failed = page.getByText(/^Could not list the keys: /);
    await failed.waitFor();
    await start();
    await page.getByText(/^Following; current to revision/).waitFor();
    // Without Retry.
    await failed.waitFor({ state: 'detached' });
    await page.getByRole('button', { name: 'Folder c/' }).waitFor();
  });

  test('an entry that could not be loaded while the server was away is loaded once the live view reconnects', async () => {
    await call('Set', { key: 'd/1', value: { n: 1 } });
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.getByRole('button', { name: 'Folder d/' }).click();
    const key = page.getByRole('list', { name: 'Keys under d/' }).getByRole('button', { name: '1', exact: true });
    await key.waitFor();
    await page.getByRole('button', { name: 'Live view' }).click();
    await page.getByText(/^Following; current to revision/).waitFor();
    expect(await server.stop()).toBe(0);
    await page.getByText(/reconnecting…/).waitFor();
    await key.click();
    const failed = page.getByText(/^Could not load it: /);
    await failed.waitFor();
    await start();
    await page.getByText(/^Following; current to revision/).waitFor();
    // Without Retry.
    await failed.waitFor({ state: 'detached' });
    await page.getByText('"n": 1').waitFor();
  });

  test("an entry's History that failed to load is replayed once the live view reconnects", async () => {
    await call('Set', { key: 'e/1', value: 1 });
    await call('Set', { key: 'e/1', value: 2 });
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.getByRole('button', { name: 'Live view' }).click();
    await page.getByText(/^Following; current to revision/).waitFor();
    // The live view's stream, already open, goes on; History's Watch fails.
    await page.route('**/kv.v1.KeyValueService/Watch', (route) => route.abort());
    await page.getByRole('button', { name: 'Folder e/' }).click();
    await page.getByRole('list', { name: 'Keys under e/' }).getByRole('button', { name: '1', exact: true }).click();
    const history = page.locator('details.history');
    await history.locator('summary').click();
    const unavailable = history.getByText(/^History unavailable: /);
    await unavailable.waitFor();
    expect(await server.stop()).toBe(0);
    await page.getByText(/reconnecting…/).waitFor();
    await page.unroute('**/kv.v1.KeyValueService/Watch');
    await start();
    await page.getByText(/^Following; current to revision/).waitFor();
    // The entry is fetched again at the same revision; without Retry.
    await history.getByText('History (2 versions)').waitFor();
    expect(await unavailable.count()).toBe(0);
  });

  test('says which changes it cannot show when they left the history while it was away', async () => {
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.getByRole('button', { name: 'Live view' }).click();
    await page.getByText(/^Following; current to revision/).waitFor();
    const before = BigInt((await call('Set', { key: 'b/0', value: 0 })).revision as string);
    await waitForRows(1);
    // The console cannot watch again until this route is gone; the server's history keeps 10 changes.
    await page.route('**/kv.v1.KeyValueService/Watch', (route) => route.abort());
    expect(await server.stop()).toBe(0);
    await page.getByText(/reconnecting…/).waitFor();
    await start();
    let last = before;
    for (let i = 1; i <= 15; i++) last = BigInt((await call('Set', { key: `b/${i}`, value: i })).revision as string);
    await page.unroute('**/kv.v1.KeyValueService/Watch');
    const gap = page.getByText(/^Changes between revision \d+ and \d+ cannot be shown/);
    await gap.waitFor();
    const [, from, to] = /between revision (\d+) and (\d+)/.exec((await gap.textContent()) ?? '')!;
    expect(BigInt(from)).toBe(before + 1n);
    expect(BigInt(to)).toBeLessThan(last);
    // Every change after the gap is shown, once.
    const shown = (await waitForRows(2 + Number(last - BigInt(to)))).filter((row) => /^\d+set/.test(row));
    expect(shown.length).toBe(1 + Number(last - BigInt(to)));
    expect(new Set(shown).size).toBe(shown.length);
  });
});

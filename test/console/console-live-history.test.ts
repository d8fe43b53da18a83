/**
 * The console's live view when the server it reconnects to has another
 * store history (WatchResponse.history_id): the server on the same address
 * was restored from a backup, so the revisions after the backup's name other
 * changes than the ones the view showed. The view must say so in one row,
 * keep the rows it showed below it as the old history's, and follow the new
 * history from its current revision: neither hide the restored store's
 * changes at revisions it had shown, nor show later ones as if they went on
 * from the old history. The keys and the entry shown are fetched again
 * too: what they showed was the old history's.
 */
import path from 'node:path';
import type { Page } from 'playwright-core';
import { KvClient } from '@kv/client';
import { readConsoleAssets } from '../../src/console-assets/read-console-assets';
import { type Browser, callJson, describeWithChromium, launchBrowser, PAGE_WAIT_MS } from '../support/browser';
import { freePort } from '../support/free-port';
import { startServer, type RunningServer } from '../support/server-process';
import { makeTempDir } from '../support/temp-dirs';

const NOTICE = /^The server's store now has another history/;

let browser: Browser;
let page: Page;

/** A server on a fixed HTTP port, and what the test started, so afterEach stops it. */
let servers: RunningServer[];
let port: number;
let dir: string;

async function start(dataDir: string, extra: string[] = []): Promise<RunningServer> {
  const server = await startServer({
    dataDir: path.join(dir, dataDir),
    args: ['--http-listen', `127.0.0.1:${port}`, '--watch-progress-ms', '300', ...extra],
  });
  servers.push(server);
  return server;
}

async function stop(server: RunningServer): Promise<void> {
  expect(await server.stop()).toBe(0);
  servers = servers.filter((s) => s !== server);
}

function call(method: string, body: unknown): Promise<Record<string, unknown>> {
  return callJson(port, method, body);
}

async function revisionOf(method: string, body: unknown): Promise<bigint> {
  return BigInt((await call(method, body)).revision as string);
}

async function rows(): Promise<string[]> {
  return page.getByRole('table').locator('tbody tr').allTextContents();
}

/** Polls the rows until `done` holds for them (fails with the rows shown after 15 s). */
async function waitForRows(what: string, done: (found: string[]) => boolean): Promise<string[]> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const found = await rows();
    if (done(found)) return found;
    if (Date.now() > deadline) throw new Error(`expected ${what}, have ${JSON.stringify(found)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Server A with h/1..h/3 (revisions 1 to 3), backed up at revision 3; the
 * live view open on h/ and showing h/4..h/6 (revisions 4 to 6) written
 * after the backup. Returns server A and the backup's path.
 */
async function liveViewAfterBackup(openKey?: string): Promise<{ a: RunningServer; backup: string }> {
  const a = await start('a');
  for (let i = 1; i <= 3; i++) await call('Set', { key: `h/${i}`, value: i });
  const backup = path.join(dir, 'at-3.backup');
  const kv = new KvClient(a.address, { deadlineMs: 5000 });
  try {
    expect((await kv.backup(backup)).revision).toBe(3);
  } finally {
    kv.close();
  }
  await page.goto(`http://127.0.0.1:${port}/#prefix=h%2F${openKey === undefined ? '' : `&key=${encodeURIComponent(openKey)}`}`);
  await page.getByRole('button', { name: 'Live view' }).click();
  await page.getByRole('heading', { name: 'Live: h/' }).waitFor();
  await page.getByText('Following; current to revision 3.').waitFor();
  for (let i = 4; i <= 6; i++) await call('Set', { key: `h/${i}`, value: i });
  await page.getByText('Following; current to revision 6.').waitFor();
  expect(await rows()).toEqual(['6seth/66', '5seth/55', '4seth/44']);
  return { a, backup };
}

describeWithChromium('the web console live view on a server restored from a backup', () => {
  beforeAll(async () => {
    if (readConsoleAssets() === undefined) throw new Error('the console is not built: run npm run build (npm install does)');
    browser = await launchBrowser();
    page = await browser.context.newPage();
    // Each wait fails within PAGE_WAIT_MS (unless it says otherwise), so a broken flow fails the test, not the suite's timeout.
    page.setDefaultTimeout(PAGE_WAIT_MS);
  });

  afterAll(async () => {
    await browser?.close();
  });

  beforeEach(async () => {
    servers = [];
    port = await freePort();
    dir = makeTempDir('kv-console-history-');
    await page.unrouteAll();
  });

  afterEach(async () => {
    for (const server of servers) await server.stop();
  });

  test('a restored store that went past the revisions shown: one row says so, and its new changes follow, none passed over', async () => {
    const { a, backup } = await liveViewAfterBackup();

    // The console cannot watch again until the restored store has been written past what the view showed.
    await page.route('**/kv.v1.KeyValueService/Watch', (route) => route.abort());
    await stop(a);
    await page.getByText(/reconnecting…/).waitFor();
    const b = await start('b', ['--restore-from', backup]);
    // The restored store has what the backup had, and takes revisions 4 to 6 (shown already, for other changes) and 7 for its own.
    expect(await call('Get', { key: 'h/3' })).toMatchObject({ entry: { modRevision: '3' } });
    expect(await revisionOf('Set', { key: 'h/r4', value: 'r4' })).toBe(4n);
    expect(await revisionOf('Delete', { key: 'h/1' })).toBe(5n);
    expect(await revisionOf('Set', { key: 'h/r6', value: 'r6' })).toBe(6n);
    expect(await revisionOf('Set', { key: 'h/r7', value: 'r7' })).toBe(7n);
    await page.unroute('**/kv.v1.KeyValueService/Watch');

    // The first message of the resumed watch names another history: the view says so once, and follows the new one from now.
    const notice = page.getByText(NOTICE);
    await notice.waitFor();
    expect(await notice.textContent()).toBe(
      "The server's store now has another history (restored from a backup, say; it is at revision 7): " +
        'the changes below are of the old one, and their revisions may now name other changes. Following the new history from here.',
    );
    await page.getByText('Following; current to revision 7.').waitFor();
    expect(await revisionOf('Set', { key: 'h/r8', value: 'r8' })).toBe(8n);
    // Once revision 8 is shown, every change before it that the view will show has been (a watch gives them in order).
    expect(await waitForRows('the change at revision 8', (found) => found.some((row) => row.startsWith('8')))).toEqual([
      '8seth/r8"r8"',
      expect.stringMatching(NOTICE),
      '6seth/66',
      '5seth/55',
      '4seth/44',
    ]);
    await page.getByText('Following; current to revision 8.').waitFor();

    // The new history is the one followed now: a plain restart of the restored server (same history id) resumes without a word.
    await stop(b);
    await page.getByText(/reconnecting…/).waitFor();
    await start('b');
    expect(await revisionOf('Set', { key: 'h/r9', value: 'r9' })).toBe(9n);
    expect(await waitForRows('the change at revision 9', (found) => found.some((row) => row.startsWith('9')))).toEqual([
      '9seth/r9"r9"',
      '8seth/r8"r8"',
      expect.stringMatching(NOTICE),
      '6seth/66',
      '5seth/55',
      '4seth/44',
    ]);
  }, 120_000);

  test('a restored store behind the revisions shown: one row says so, and its changes at revisions the view had shown appear', async () => {
    const { a, backup } = await liveViewAfterBackup('h/5');
    // The entry open, and the keys listed, are the old history's: h/5 (revision 5) among them.
    await page.getByRole('button', { name: 'Refresh', exact: true }).click();
    const keys = page.locator('ul.keys');
    await keys.getByRole('button', { name: '5', exact: true }).waitFor();
    await page.getByLabel('Value').getByText('5').waitFor();

    await stop(a);
    await page.getByText(/reconnecting…/).waitFor();
    await start('b', ['--restore-from', backup]);
    // The console finds the restored store at revision 3, before 6, which it showed.
    const notice = page.getByText(NOTICE);
    await notice.waitFor();
    expect(await notice.textContent()).toContain('it is at revision 3)');
    await page.getByText('Following; current to revision 3.').waitFor();
    // The entry and the keys are fetched again: h/5 is not in the restored store (it was never written there, not deleted).
    await page.getByText('This key does not exist.').waitFor();
    await keys.getByRole('button', { name: '5', exact: true }).waitFor({ state: 'detached' });
    expect(await keys.locator('li').allTextContents()).toEqual(['1', '2', '3']);

    // Revisions 4 and 5, shown already for the old history's changes, are the restored store's own now: they are shown.
    expect(await revisionOf('Set', { key: 'h/r4', value: 'r4' })).toBe(4n);
    expect(await revisionOf('Delete', { key: 'h/2' })).toBe(5n);
    expect(await waitForRows('the change at revision 5', (found) => found.some((row) => row.startsWith('5deleted')))).toEqual([
      '5deletedh/2',
      '4seth/r4"r4"',
      expect.stringMatching(NOTICE),
      '6seth/66',
      '5seth/55',
      '4seth/44',
    ]);
    await page.getByText('Following; current to revision 5.').waitFor();
  }, 120_000);
});

/**
 * The web console in a real browser against a real server: browse the key
 * tree with paging, view an entry, edit with JSON validation, a save that
 * loses a race shows both versions, create, delete and clear with
 * confirmation, the live view, keyboard use. With KV_CONSOLE_SCREENSHOTS=dir
 * (npm run console:screenshots) it saves the main screens there as PNGs.
 */
import path from 'node:path';
import type { Page } from 'playwright-core';
import { readConsoleAssets } from '../../src/console-assets/read-console-assets';
import { describeWithChromium, launchBrowser, type Browser } from '../support/browser';
import { REPO_ROOT, startServer, type RunningServer } from '../support/server-process';

const SCREENSHOTS = process.env.KV_CONSOLE_SCREENSHOTS;

let server: RunningServer;
let browser: Browser;
let page: Page;
let base: string;

async function call(method: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(`${base}/kv.v1.KeyValueService/${method}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

async function valueOf(key: string): Promise<unknown> {
  const { status, json } = await call('Get', { key });
  return status === 404 ? undefined : (json.entry as { value: unknown }).value;
}

async function screenshot(name: string): Promise<void> {
  if (SCREENSHOTS !== undefined) await page.screenshot({ path: path.resolve(REPO_ROOT, SCREENSHOTS, `console-${name}.png`) });
}

describeWithChromium('the web console', () => {
  beforeAll(async () => {
    if (readConsoleAssets() === undefined) throw new Error('the console is not built: run npm run build (npm install does)');
    server = await startServer({ args: ['--http-listen', '127.0.0.1:0', '--watch-progress-ms', '500'] });
    base = `http://${server.httpAddress}`;
    browser = await launchBrowser();
    page = await browser.context.newPage();
    // Each wait fails within 10 s (unless it says otherwise), so a broken flow fails the test quickly.
    page.setDefaultTimeout(10_000);
    page.on('dialog', (dialog) => {
      void (dialog.type() === 'beforeunload' ? dialog.accept() : dialog.dismiss());
    });
  });

  afterAll(async () => {
    await browser?.close();
    expect(await server.stop()).toBe(0);
  });

  beforeEach(async () => {
    await call('Clear', { prefix: '' });
    await call('Set', { key: 'app/config', value: { db: { host: 'db.internal', port: 5432 }, replicas: 3 } });
    await call('Set', { key: 'app/flags', value: { dark: true } });
    await call('Set', { key: 'user/1', value: { name: 'Ada', langs: ['en', 'fr'] } });
    await call('Set', { key: 'user/2', value: { name: 'Grace' } });
    await page.unrouteAll();
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.goto(`${base}/`);
  });

  test('browses keys as a tree of folders, one page at a time, and walks back up by the breadcrumb', async () => {
    for (let i = 0; i < 60; i++) await call('Set', { key: `many/${String(i).padStart(2, '0')}`, value: i });
    await page.reload();
    const keys = page.getByRole('list', { name: 'Keys under the root' });
    // A page is 50 keys: the first holds app/ and most of many/; user/ comes with the next.
    await expectButtons(keys, ['Folder app/', 'Folder many/']);
    await page.getByRole('button', { name: 'Load more' }).click();
    await keys.getByRole('button', { name: 'Folder user/' }).waitFor();
    await expectButtons(keys, ['Folder app/', 'Folder many/', 'Folder user/']);
    await page.getByRole('button', { name: 'Folder many/' }).click();
    const many = page.getByRole('list', { name: 'Keys under many/' });
    await many.getByRole('button', { name: '49' }).waitFor();
    expect(await many.getByRole('button').count()).toBe(50);
    await page.getByRole('button', { name: 'Load more' }).click();
    await many.getByRole('button', { name: '59' }).waitFor();
    expect(await many.getByRole('button').count()).toBe(60);
    expect(await page.getByRole('button', { name: 'Load more' }).count()).toBe(0);
    await page.getByRole('navigation', { name: 'Folder' }).getByRole('button', { name: 'all keys' }).click();
    // As a person would: type once the root is shown (the prefix box is reset to the folder shown when it changes).
    await keys.getByRole('button', { name: 'Folder many/' }).waitFor();
    await page.getByLabel('Prefix').fill('user/');
    await page.getByLabel('Prefix').press('Enter');
    await expectButtons(page.getByRole('list', { name: 'Keys under user/' }), ['1', '2']);
    await screenshot('browse');
  });

  test('shows an entry as formatted JSON with its revisions', async () => {
    const revision = String(
      ((await call('Set', { key: 'user/1', value: { name: 'Ada', langs: ['en', 'fr'] } })).json as { revision: string }).revision,
    );
    await openKey('user/', '1');
    const value = page.getByLabel('Value');
    await expect(value.textContent()).resolves.toBe(JSON.stringify({ name: 'Ada', langs: ['en', 'fr'] }, null, 2));
    const revisions = await page.locator('.revisions').textContent();
    expect(revisions).toContain(`Revision${revision}`);
    expect(revisions).toContain('Version2');

    // Its earlier versions, replayed through Watch, newest first; an old one can be edited from.
    await page.getByText(/^History/).click();
    const versions = page.getByRole('list', { name: 'Versions, newest first' });
    await versions.getByRole('listitem').nth(1).waitFor();
    expect(await versions.getByRole('listitem').allTextContents()).toEqual([
      `revision ${revision}{"name":"Ada","langs":["en","fr"]}`,
      expect.stringMatching(/^revision \d+\{"name":"Ada","langs":\["en","fr"\]\}Edit from this version$/),
    ]);
    await screenshot('entry');
    await versions.getByRole('button', { name: 'Edit from this version' }).click();
    await expect(page.getByLabel('Value of user/1 (JSON)').inputValue()).resolves.toBe(
      JSON.stringify({ name: 'Ada', langs: ['en', 'fr'] }, null, 2),
    );
  });

  test('shows the lease and the time left of a key set with a TTL', async () => {
    await call('Set', { key: 'app/session', value: { user: 'ada' }, ttlMs: '600000' });
    const lease = ((await call('Get', { key: 'app/session' })).json.entry as { lease: string }).lease;
    await openKey('app/', 'session');
    await page.getByText(new RegExp(`^On lease ${lease}: deleted when it expires, in \\d+ s \\(time to live 600 s\\)\\.$`)).waitFor();
    await screenshot('lease');
  });

  test('edits with JSON validation and saves as a compare-and-set; "__proto__" is kept', async () => {
    await openKey('user/', '2');
    await page.getByRole('button', { name: 'Edit' }).click();
    const editor = page.getByLabel('Value of user/2 (JSON)');
    await editor.fill('{"name": "Grace",');
    await page.getByText(/^Not valid JSON/).waitFor();
    expect(await page.getByRole('button', { name: /^Save/ }).isDisabled()).toBe(true);
    expect(await editor.getAttribute('aria-invalid')).toBe('true');
    await editor.fill('{"name": "Grace", "name": "Hopper"}');
    await page.getByText(/duplicate/).waitFor();
    await editor.fill('{"id": 12345678901234567890}');
    await page
      .getByText(/^Cannot be saved as typed: the value has the number 12345678901234567890, which would be stored as 12345678901234567000/)
      .waitFor();
    expect(await page.getByRole('button', { name: /^Save/ }).isDisabled()).toBe(true);
    await editor.fill('{"name": "Grace Hopper", "__proto__": {"admin": true}}');
    await page.getByText('Valid JSON.').waitFor();
    await screenshot('edit');
    await page.getByRole('button', { name: /^Save/ }).click();
    await page.getByText(/^Saved at revision/).waitFor();
    expect(JSON.stringify(await valueOf('user/2'))).toBe('{"name":"Grace Hopper","__proto__":{"admin":true}}');
  });

  test('a save that lost a race shows both versions and lets the person keep either', async () => {
    await openKey('app/', 'flags');
    await page.getByRole('button', { name: 'Edit' }).click();
    await page.getByLabel('Value of app/flags (JSON)').fill('{"dark": false}');
    await call('Set', { key: 'app/flags', value: { dark: true, beta: true } });
    await page.getByRole('button', { name: /^Save/ }).click();
    const conflict = page.getByRole('group', { name: 'Someone else changed this entry while you were editing' });
    await conflict.waitFor();
    expect(await conflict.getByRole('figure').nth(0).textContent()).toContain('{"dark": false}');
    expect(await conflict.getByRole('figure').nth(1).textContent()).toContain('"beta": true');
    expect(await valueOf('app/flags')).toEqual({ dark: true, beta: true });
    await screenshot('conflict');
    await conflict.getByRole('button', { name: /^Keep mine/ }).click();
    await page.getByText(/^Saved at revision/).waitFor();
    expect(await valueOf('app/flags')).toEqual({ dark: false });

    // The other choice: the version now on the server stays.
    await page.getByRole('button', { name: 'Edit' }).click();
    await page.getByLabel('Value of app/flags (JSON)').fill('{"mine": 1}');
    await call('Set', { key: 'app/flags', value: { theirs: 2 } });
    await page.getByRole('button', { name: /^Save/ }).click();
    await conflict.getByRole('button', { name: 'Keep theirs (discard mine)' }).click();
    await expect(page.getByLabel('Value').textContent()).resolves.toContain('"theirs": 2');
    expect(await valueOf('app/flags')).toEqual({ theirs: 2 });
  });

  test('creates a key only if it does not exist', async () => {
    await page.getByRole('button', { name: 'New key' }).click();
    await page.getByLabel('Key', { exact: true }).fill('user/3');
    await page.getByLabel('Value (JSON)').fill('{"name": "Barbara"}');
    await page.getByRole('button', { name: 'Create' }).click();
    await page.getByRole('heading', { name: 'user/3' }).waitFor();
    expect(await valueOf('user/3')).toEqual({ name: 'Barbara' });
    await page.getByRole('button', { name: 'New key' }).click();
    await page.getByLabel('Key', { exact: true }).fill('user/1');
    await page.getByRole('button', { name: 'Create' }).click();
    await page.getByText('user/1 already exists: open it to edit it.').waitFor();
    expect(await valueOf('user/1')).toEqual({ name: 'Ada', langs: ['en', 'fr'] });
  });

  test('deletes an entry and clears a prefix only after confirmation', async () => {
    await openKey('user/', '1');
    await page.getByRole('button', { name: 'Delete…' }).click();
    const dialog = page.getByRole('dialog', { name: 'Delete user/1?' });
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'hidden' });
    expect(await valueOf('user/1')).toBeDefined();
    await page.getByRole('button', { name: 'Delete…' }).click();
    await dialog.getByRole('button', { name: 'Delete' }).click();
    await page.getByText('Deleted user/1.').waitFor();
    expect(await valueOf('user/1')).toBeUndefined();

    await page.getByRole('navigation', { name: 'Folder' }).getByRole('button', { name: 'all keys' }).click();
    await page.getByRole('button', { name: 'Folder app/' }).click();
    await page.getByRole('button', { name: 'Clear app/…' }).click();
    const clear = page.getByRole('dialog', { name: 'Clear every key under app/?' });
    await clear.waitFor();
    await screenshot('clear');
    await page.keyboard.press('Escape');
    await clear.waitFor({ state: 'hidden' });
    expect(await valueOf('app/config')).toBeDefined();
    await page.getByRole('button', { name: 'Clear app/…' }).click();
    await clear.getByRole('button', { name: 'Clear' }).click();
    await page.getByText('Cleared 2 keys under app/.').waitFor();
    expect([await valueOf('app/config'), await valueOf('app/flags'), await valueOf('user/2')]).toEqual([
      undefined,
      undefined,
      { name: 'Grace' },
    ]);
  });

  test('the live view follows the prefix through Watch', async () => {
    await page.getByRole('button', { name: 'Folder user/' }).click();
    await page.getByRole('button', { name: 'Live view' }).click();
    await page.getByText(/^Following; current to revision/).waitFor();
    await call('Set', { key: 'user/9', value: { name: 'Katherine' } });
    await call('Set', { key: 'app/ignored', value: 1 });
    await call('Delete', { key: 'user/2' });
    const rows = page.getByRole('table').locator('tbody tr');
    await rows.nth(1).waitFor();
    expect(await rows.allTextContents()).toEqual([
      expect.stringMatching(/^\d+deleteduser\/2$/),
      expect.stringMatching(/^\d+setuser\/9\{"name":"Katherine"\}$/),
    ]);
    await screenshot('live');
  });

  test('a narrow window shows one column', async () => {
    await page.setViewportSize({ width: 480, height: 800 });
    await openKey('user/', '1');
    const tree = (await page.locator('section.tree').boundingBox())!;
    const entry = (await page.locator('section.entry').boundingBox())!;
    expect(entry.y).toBeGreaterThanOrEqual(tree.y + tree.height - 1);
    expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(480);
  });

  test('works from the keyboard: labelled fields, Tab to a key, Enter to open it', async () => {
    await page.getByLabel('Prefix').focus();
    await page.keyboard.type('user/');
    await page.keyboard.press('Enter');
    await page.getByRole('list', { name: 'Keys under user/' }).getByRole('button', { name: '1', exact: true }).waitFor();
    // Prefix -> Go -> breadcrumb "all keys" -> key 1
    for (let i = 0; i < 3; i++) await page.keyboard.press('Tab');
    expect(await page.locator(':focus').textContent()).toBe('1');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'user/1' }).waitFor();
  });
  test('JSON errors are worded for people, and a lone surrogate is refused before the server does', async () => {
    await openKey('user/', '2');
    await page.getByRole('button', { name: 'Edit' }).click();
    const editor = page.getByLabel('Value of user/2 (JSON)');
    await editor.fill('{"a": }');
    const check = page.locator('#value-check');
    await check.getByText(/^Not valid JSON/).waitFor();
    expect(await check.textContent()).not.toContain('google.protobuf');
    await editor.fill('{"name": "\\ud800"}');
    await check.getByText(/lone surrogate/).waitFor();
    expect(await page.getByRole('button', { name: /^Save/ }).isDisabled()).toBe(true);
    await editor.fill('{"\\udc00": 1}');
    await check.getByText(/lone surrogate/).waitFor();
    await editor.fill('"\\ud83d\\ude00"');
    await check.getByText('Valid JSON.').waitFor();
  });
});

async function openKey(folder: string, name: string): Promise<void> {
  await page.getByRole('button', { name: `Folder ${folder}` }).click();
  await page
    .getByRole('list', { name: `Keys under ${folder}` })
    .getByRole('button', { name, exact: true })
    .click();
  await page.getByRole('heading', { name: `${folder}${name}` }).waitFor();
}

async function expectButtons(list: ReturnType<Page['getByRole']>, names: string[]): Promise<void> {
  await list.getByRole('button').first().waitFor();
  const labels = await list.getByRole('button').evaluateAll((buttons) => buttons.map((b) => b.getAttribute('aria-label') ?? b.textContent));
  expect(labels).toEqual(names);
}

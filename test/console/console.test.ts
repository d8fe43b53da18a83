/**
 * The web console in a real browser against a real server: browse the key
 * tree with paging, view an entry, edit with JSON validation, a save that
 * loses a race shows both versions, create, delete and clear with
 * confirmation, the live view, keyboard use. With KV_CONSOLE_SCREENSHOTS=dir
 * (npm run console:screenshots) it saves the main screens there as PNGs.
 */
import path from 'node:path';
import type { Dialog, Locator, Page } from 'playwright-core';
import { readConsoleAssets } from '../../src/console-assets/read-console-assets';
import { PAGE_WAIT_MS, describeWithChromium, launchBrowser, type Browser } from '../support/browser';
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
    // Each wait fails within PAGE_WAIT_MS (unless it says otherwise), so a broken flow fails the test, not the suite's timeout.
    page.setDefaultTimeout(PAGE_WAIT_MS);
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

  test('a prefix typed as soon as the box appears is kept: the first listing does not set the box again after it', async () => {
    const fresh = await browser.context.newPage();
    try {
      fresh.setDefaultTimeout(PAGE_WAIT_MS);
      // Timers and animation frames held: preact's effects (the first listing) wait, as on a busy machine.
      await fresh.clock.install();
      await fresh.clock.pauseAt(Date.now() + 1000);
      await fresh.goto(`${base}/`);
      await fresh.getByLabel('Prefix').fill('app/');
      await fresh.clock.resume();
      // The first listing has run (the root's folders are shown), and the box still holds what was typed.
      await fresh.getByRole('button', { name: 'Folder user/' }).waitFor();
      expect(await fresh.getByLabel('Prefix').inputValue()).toBe('app/');
      await fresh.getByLabel('Prefix').press('Enter');
      await fresh.getByRole('button', { name: 'config', exact: true }).waitFor();
    } finally {
      await fresh.close();
    }
  });

  test('browses keys as a tree of folders, one page at a time, and walks back up by the breadcrumb', async () => {
    for (let i = 0; i < 60; i++) await call('Set', { key: `many/${String(i).padStart(2, '0')}`, value: i });
    await page.reload();
    const keys = page.getByRole('list', { name: 'Keys under the root' });
    // A page is 50 keys: the first holds app/ and most of many/; user/ comes with the next, which is read at once since
    // the first filled only two entries of the level (a big folder does not hide its siblings behind Load more).
    await keys.getByRole('button', { name: 'Folder user/' }).waitFor();
    await expectButtons(keys, ['Folder app/', 'Folder many/', 'Folder user/']);
    expect(await page.getByRole('button', { name: 'Load more' }).count()).toBe(0);
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
    // Focus is not lost with the editor: it is on the conflict's heading, read out, with the choices next.
    await expectFocus('H3#conflict-title');
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
    await expectFocus('BUTTON:Edit');
    expect(await valueOf('app/flags')).toEqual({ theirs: 2 });
  });

  test('leaving a conflict asks before the text not saved goes, as leaving an edit does', async () => {
    await openKey('app/', 'flags');
    await page.getByRole('button', { name: 'Edit' }).click();
    await page.getByLabel('Value of app/flags (JSON)').fill('{"dark": false}');
    await call('Set', { key: 'app/flags', value: { dark: true, beta: true } });
    await page.getByRole('button', { name: /^Save/ }).click();
    const conflict = page.getByRole('group', { name: 'Someone else changed this entry while you were editing' });
    await conflict.waitFor();
    // This page's dialogs are answered "Cancel": the conflict stays, with the text.
    const asked: string[] = [];
    const ask = (dialog: Dialog): void => void asked.push(dialog.message());
    page.on('dialog', ask);
    try {
      await page.getByRole('list', { name: 'Keys under app/' }).getByRole('button', { name: 'config', exact: true }).click();
      await waitUntil(() => Promise.resolve(asked.length === 1), 'a question on opening another key', 3000);
      await page.goBack();
      await waitUntil(() => Promise.resolve(asked.length === 2), 'a question on Back', 3000);
      expect(asked).toEqual(['Discard the changes you have not saved?', 'Discard the changes you have not saved?']);
    } finally {
      page.off('dialog', ask);
    }
    await page.getByRole('heading', { name: 'app/flags' }).waitFor();
    expect(await conflict.getByRole('figure').nth(0).textContent()).toContain('{"dark": false}');
    // Keep theirs is a choice made: it does not ask.
    await conflict.getByRole('button', { name: 'Keep theirs (discard mine)' }).click();
    await page.getByRole('list', { name: 'Keys under app/' }).getByRole('button', { name: 'config', exact: true }).click();
    await page.getByText('"port": 5432').waitFor();
  });

  test('Save pressed again while the save is on its way sends it once: no conflict with itself', async () => {
    // A slow network: each Set waits here until the test lets it go.
    let sets = 0;
    let letGo!: () => void;
    const gate = new Promise<void>((resolve) => (letGo = resolve));
    await page.route('**/kv.v1.KeyValueService/Set', async (route) => {
      sets++;
      await gate;
      await route.continue();
    });
    await openKey('app/', 'flags');
    await page.getByRole('button', { name: 'Edit' }).click();
    const editor = page.getByLabel('Value of app/flags (JSON)');
    await editor.fill('{"dark": false}');
    await editor.press('Control+Enter');
    await waitUntil(() => Promise.resolve(sets === 1), 'the first Set');
    // An impatient second press is not sent (it would be a compare-and-set on the revision the first replaces); Save says so.
    await editor.press('Control+Enter');
    expect(await page.getByRole('button', { name: /^Save/ }).isDisabled()).toBe(true);
    // Nor can the text change meanwhile: once saved the entry is shown, and more typing would be lost unsaid.
    expect(await editor.isEditable()).toBe(false);
    letGo();
    await page.getByText(/^Saved at revision/).waitFor();
    await page.getByRole('button', { name: 'Edit' }).waitFor();
    expect(await page.getByRole('group', { name: /^Someone else changed/ }).count()).toBe(0);
    expect(sets).toBe(1);
    expect(await valueOf('app/flags')).toEqual({ dark: false });
  });

  test('once saved, the text is not taken for an unsaved edit: opening another key before the entry is read again does not ask', async () => {
    await openKey('app/', 'flags');
    await page.getByRole('button', { name: 'Edit' }).click();
    await page.getByLabel('Value of app/flags (JSON)').fill('{"dark": false}');
    // A slow network: the entry is not read again after the save until the test lets it.
    let letGo!: () => void;
    const gate = new Promise<void>((resolve) => (letGo = resolve));
    await page.route('**/kv.v1.KeyValueService/Get', async (route) => {
      await gate;
      await route.continue();
    });
    const asked: string[] = [];
    const ask = (dialog: Dialog): void => void asked.push(dialog.message());
    page.on('dialog', ask);
    try {
      await page.getByRole('button', { name: /^Save/ }).click();
      await page.getByText(/^Saved at revision/).waitFor();
      await page.getByRole('list', { name: 'Keys under app/' }).getByRole('button', { name: 'config', exact: true }).click();
      const opened = page.getByRole('heading', { name: 'app/config' });
      await waitUntil(async () => asked.length > 0 || (await opened.count()) === 1, 'app/config to open, or a question');
      expect(asked).toEqual([]);
    } finally {
      page.off('dialog', ask);
      letGo();
    }
    await page.getByText('"port": 5432').waitFor();
    expect(await valueOf('app/flags')).toEqual({ dark: false });
  });

  test('a save that met a change, when the change cannot be read, says so and keeps the text', async () => {
    await openKey('app/', 'flags');
    await page.getByRole('button', { name: 'Edit' }).click();
    const editor = page.getByLabel('Value of app/flags (JSON)');
    await editor.fill('{"dark": false}');
    await call('Set', { key: 'app/flags', value: { theirs: 1 } });
    await page.route('**/kv.v1.KeyValueService/Get', (route) => route.abort());
    await editor.press('Control+Enter');
    await page
      .getByText(
        /^Not saved: the entry changed since you began, and reading it again failed: the server could not be reached \(.+\)\. Your text is still here\.$/,
      )
      .waitFor();
    expect(await editor.inputValue()).toBe('{"dark": false}');
    expect(await valueOf('app/flags')).toEqual({ theirs: 1 });
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

  test('clearing a prefix that holds the key being edited asks before the unsaved edit goes, and keeps it if told', async () => {
    await openKey('user/', '1');
    await page.getByRole('button', { name: 'Edit' }).click();
    const editor = page.getByLabel('Value of user/1 (JSON)');
    await editor.fill('{"name": "Ada Lovelace"}');
    // This page's dialogs are answered "Cancel": the edit stays.
    const asked = new Promise<string>((resolve) => page.once('dialog', (dialog) => resolve(dialog.message())));
    await page.getByRole('button', { name: 'Clear user/…' }).click();
    await page.getByRole('dialog', { name: 'Clear every key under user/?' }).getByRole('button', { name: 'Clear' }).click();
    await expect(orAfter(asked, 3000, 'no dialog')).resolves.toBe('Discard the changes you have not saved?');
    await page.getByText('Cleared 2 keys under user/.').waitFor();
    expect(await valueOf('user/1')).toBeUndefined();
    await expect(editor.inputValue()).resolves.toBe('{"name": "Ada Lovelace"}');
    // Its save finds the key gone, and offers to create it again.
    await page.getByRole('button', { name: /^Save/ }).click();
    await page.getByRole('button', { name: 'Keep mine (create it again)' }).click();
    await page.getByText(/^Saved at revision/).waitFor();
    expect(await valueOf('user/1')).toEqual({ name: 'Ada Lovelace' });
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

  test('the live view keeps its Key column wide enough to read beside long values', async () => {
    await page.getByRole('button', { name: 'Folder user/' }).click();
    await page.getByRole('button', { name: 'Live view' }).click();
    await page.getByText(/^Following; current to revision/).waitFor();
    await call('Set', { key: 'user/a-longer-key-name', value: 'lorem ipsum dolor sit amet '.repeat(30) });
    await call('Set', { key: 'user/another-one', value: 'x'.repeat(900) });
    const rows = page.getByRole('table').locator('tbody tr');
    await rows.nth(1).waitFor();
    // Each key on one line (an inline element has one box a line), not "user/a-lo" / "nger-key-" / "name".
    const lines = await rows.evaluateAll((trs) =>
      trs.map((tr) => tr.querySelectorAll('td')[2].querySelector('code')!.getClientRects().length),
    );
    expect(lines).toEqual([1, 1]);
  });

  test('with the live view on, the keys listed follow keys created and deleted elsewhere', async () => {
    await page.getByRole('button', { name: 'Folder user/' }).click();
    const keys = page.getByRole('list', { name: 'Keys under user/' });
    await expectButtons(keys, ['1', '2']);
    await page.getByRole('button', { name: 'Live view' }).click();
    await page.getByText(/^Following; current to revision/).waitFor();
    await call('Set', { key: 'user/3', value: { name: 'Barbara' } });
    await call('Delete', { key: 'user/2' });
    await call('Set', { key: 'user/1', value: { name: 'Ada', langs: ['en'] } });
    // Without Refresh: created and deleted are listed as such.
    await waitUntil(
      async () => JSON.stringify(await keys.getByRole('button').allTextContents()) === '["1","3"]',
      'user/3 listed and user/2 gone',
      PAGE_WAIT_MS,
    );
  });

  test('a large value is shown cut, saying so, in the live view and History: its row is not hundreds of windows tall', async () => {
    await page.getByRole('button', { name: 'Folder user/' }).click();
    await page.getByRole('button', { name: 'Live view' }).click();
    await page.getByText(/^Following; current to revision/).waitFor();
    await call('Set', { key: 'user/big', value: 'x'.repeat(200_000) });
    await call('Set', { key: 'user/big', value: 'y'.repeat(200_000) });
    const row = page.getByRole('table').locator('tbody tr').nth(1);
    await row.waitFor();
    // Compared by its ends and length: a failure does not print 200000 x's.
    const cut = (text: string | null) => ({ start: text?.slice(0, 3), end: text?.slice(-45), length: text?.length });
    const expected = cut(`"${'x'.repeat(999)}… (the first 1000 of 200002 characters)`);
    expect(cut(await row.locator('td').nth(3).textContent())).toEqual(expected);
    expect((await row.boundingBox())!.height).toBeLessThan(800);
    await page.getByRole('button', { name: 'Refresh' }).click();
    await page.getByRole('list', { name: 'Keys under user/' }).getByRole('button', { name: 'big', exact: true }).click();
    await page.getByText('History (2 versions)').click();
    const versions = page.getByRole('list', { name: 'Versions, newest first' }).getByRole('listitem');
    expect(cut(await versions.nth(1).locator('code').textContent())).toEqual(expected);
    // What is edited from it is the whole version.
    await versions.nth(1).getByRole('button', { name: 'Edit from this version' }).click();
    expect(await page.getByLabel('Value of user/big (JSON)').inputValue()).toEqual(`"${'x'.repeat(200_000)}"`);
  });

  test('the live view names a prefix with a bidi or invisible character as the tree does, escaped', async () => {
    await call('Set', { key: 'odd/\u202egnp.exe', value: 1 });
    await page.getByLabel('Prefix').fill('odd/\u202egnp');
    await page.getByLabel('Prefix').press('Enter');
    await page.getByRole('button', { name: 'Live view' }).click();
    // Not "Live: odd/png", which the text would read as.
    const heading = page.getByRole('heading', { name: /^Live:/ });
    await heading.waitFor();
    expect(await heading.textContent()).toBe('Live: "odd/\\u202egnp"');
    expect(await heading.locator('.escape').textContent()).toBe('\\u202e');
    await call('Set', { key: 'odd/\u202egnp.exe', value: 2 });
    await page.getByRole('table').locator('tbody tr').first().waitFor();
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

  test('saving an edit keeps the key on its lease; a lease gone meanwhile is said so', async () => {
    await call('Set', { key: 'app/session', value: { user: 'ada' }, ttlMs: '600000' });
    const lease = ((await call('Get', { key: 'app/session' })).json.entry as { lease: string }).lease;
    await openKey('app/', 'session');
    await page.getByRole('button', { name: 'Edit' }).click();
    await page.getByLabel('Value of app/session (JSON)').fill('{"user": "grace"}');
    await page.getByRole('button', { name: /^Save/ }).click();
    await page.getByText(/^Saved at revision/).waitFor();
    const saved = (await call('Get', { key: 'app/session' })).json.entry as { lease?: string; value: unknown };
    expect([saved.value, saved.lease]).toEqual([{ user: 'grace' }, lease]);

    // The lease ends while the edit is open (and the key with it): nothing is saved, and the conflict says why.
    const granted = (await call('GrantLease', { ttlMs: '600000' })).json as { id: string };
    await call('Set', { key: 'app/short', value: 1, lease: granted.id });
    await page.getByRole('button', { name: 'Refresh' }).click();
    await page.getByRole('list', { name: 'Keys under app/' }).getByRole('button', { name: 'short', exact: true }).click();
    await page.getByRole('heading', { name: 'app/short' }).waitFor();
    await page.getByRole('button', { name: 'Edit' }).click();
    await page.getByLabel('Value of app/short (JSON)').fill('2');
    await call('RevokeLease', { id: granted.id });
    await page.getByRole('button', { name: /^Save/ }).click();
    await page.getByText(new RegExp(`It has since been deleted \\(its lease ${granted.id} expired or was revoked\\)\\.`)).waitFor();
    expect(await valueOf('app/short')).toBeUndefined();
  });

  test('a lease lookup that failed says so and can be retried, and is not left "…"', async () => {
    await call('Set', { key: 'app/session', value: { user: 'ada' }, ttlMs: '600000' });
    const lease = ((await call('Get', { key: 'app/session' })).json.entry as { lease: string }).lease;
    await page.route('**/kv.v1.KeyValueService/LeaseInfo', (route) => route.abort());
    await openKey('app/', 'session');
    const line = page.locator('.lease');
    await line
      .getByText(new RegExp(`^On lease ${lease}: could not look it up: the server could not be reached \\(.+\\)\\. Retry$`))
      .waitFor();
    await page.unroute('**/kv.v1.KeyValueService/LeaseInfo');
    await line.getByRole('button', { name: 'Retry' }).click();
    await line.getByText(/deleted when it expires, in \d+ s \(time to live 600 s\)\.$/).waitFor();
  });

  test("the lease line's Retry is an action too: the messages of earlier actions go with it", async () => {
    await call('Set', { key: 'app/session', value: { user: 'ada' }, ttlMs: '600000' });
    await page.route('**/kv.v1.KeyValueService/LeaseInfo', (route) => route.abort());
    await page.route('**/kv.v1.KeyValueService/Clear', (route) => route.abort());
    await openKey('app/', 'session');
    const line = page.locator('.lease');
    await line.getByText(/could not look it up/).waitFor();
    // The console's notice (a Clear that failed) goes with it.
    await page.getByRole('button', { name: 'Clear app/…' }).click();
    await page.getByRole('dialog', { name: 'Clear every key under app/?' }).getByRole('button', { name: 'Clear' }).click();
    const banner = page.locator('.banner').getByText(/^the server could not be reached/);
    await banner.waitFor();
    await line.getByRole('button', { name: 'Retry' }).click();
    await banner.waitFor({ state: 'detached' });

    // And the entry's own message (a save: the entry at its new revision asks about the lease again, which fails).
    await page.getByRole('button', { name: 'Edit' }).click();
    await page.getByLabel('Value of app/session (JSON)').fill('{"user": "grace"}');
    await page.getByRole('button', { name: /^Save/ }).click();
    const saved = page.getByText(/^Saved at revision/);
    await saved.waitFor();
    await line.getByText(/could not look it up/).waitFor();
    await page.unroute('**/kv.v1.KeyValueService/LeaseInfo');
    await line.getByRole('button', { name: 'Retry' }).click();
    await line.getByText(/deleted when it expires, in \d+ s \(time to live 600 s\)\.$/).waitFor();
    await saved.waitFor({ state: 'detached' });
  });

  test("an entry's History that failed to load is replayed on Reload at the same revision, and can be retried", async () => {
    await call('Set', { key: 'app/flags', value: { dark: false } });
    await page.route('**/kv.v1.KeyValueService/Watch', (route) => route.abort());
    await openKey('app/', 'flags');
    const history = page.locator('details.history');
    await history.locator('summary').click();
    const unavailable = history.getByText(/^History unavailable: the server could not be reached \(.+\)\. Retry$/);
    await unavailable.waitFor();
    await page.unroute('**/kv.v1.KeyValueService/Watch');
    // Reload fetches the entry at the same revision: its History, which failed, is replayed too.
    await page.getByRole('button', { name: 'Reload' }).click();
    await history.getByText('History (2 versions)').waitFor();
    expect(await unavailable.count()).toBe(0);

    // Its own Retry.
    await page.route('**/kv.v1.KeyValueService/Watch', (route) => route.abort());
    await page.getByRole('list', { name: 'Keys under app/' }).getByRole('button', { name: 'config', exact: true }).click();
    await history.locator('summary').click();
    await unavailable.waitFor();
    await page.unroute('**/kv.v1.KeyValueService/Watch');
    await history.getByRole('button', { name: 'Retry' }).click();
    await history.getByText('History (1 version)').waitFor();
    expect(await unavailable.count()).toBe(0);
  });

  test('the time left on a lease counts down, and the key is shown as gone when it expires', async () => {
    await call('Set', { key: 'app/brief', value: 1, ttlMs: '4000' });
    await openKey('app/', 'brief');
    const lease = page.locator('.lease');
    await lease.getByText(/in \d\.\d s/).waitFor();
    const first = await lease.textContent();
    await waitUntil(async () => (await lease.textContent()) !== first, 'the countdown to move', 3000);
    await page.getByText('This key has been deleted.').waitFor();
  });

  test('Refresh and Go on the same prefix list again; an open entry deleted elsewhere is shown as deleted', async () => {
    await openKey('user/', '1');
    // Shown, not still loading: a delete that beat the first read would make it a key that "does not exist" (failed so in CI).
    await page.getByRole('button', { name: 'Edit' }).waitFor();
    await call('Delete', { key: 'user/1' });
    await call('Set', { key: 'user/3', value: 3 });
    await page.getByRole('button', { name: 'Refresh' }).click();
    await page.getByText('This key has been deleted.').waitFor();
    const keys = page.getByRole('list', { name: 'Keys under user/' });
    await keys.getByRole('button', { name: '3', exact: true }).waitFor();
    await expectButtons(keys, ['2', '3']);
    await call('Set', { key: 'user/4', value: 4 });
    await page.getByLabel('Prefix').press('Enter');
    await keys.getByRole('button', { name: '4', exact: true }).waitFor();

    // A Clear seen in the live view (started before the entry was opened).
    await page.getByRole('button', { name: 'Live view' }).click();
    await page.getByText(/^Following; current to revision/).waitFor();
    await keys.getByRole('button', { name: '2', exact: true }).click();
    await page.getByText('"name": "Grace"').waitFor();
    await call('Clear', { prefix: 'user/' });
    await page.getByText('This key has been deleted.').waitFor();
  });

  test('a listing or an entry that failed to load can be retried, and is not left "Loading…"', async () => {
    await page.route('**/kv.v1.KeyValueService/ListKeys', (route) => route.abort());
    await page.reload();
    // Not the browser's bare "Failed to fetch".
    await page.getByText(/^Could not list the keys: the server could not be reached \(.+\)$/).waitFor();
    await page.unroute('**/kv.v1.KeyValueService/ListKeys');
    await page.getByRole('button', { name: 'Retry' }).click();
    await page.getByRole('button', { name: 'Folder user/' }).click();
    await page.route('**/kv.v1.KeyValueService/Get', (route) => route.abort());
    await page.getByRole('list', { name: 'Keys under user/' }).getByRole('button', { name: '2', exact: true }).click();
    await page.getByText(/^Could not load it: the server could not be reached \(.+\)$/).waitFor();
    expect(await page.locator('section.entry').getByText('Loading…').count()).toBe(0);
    await page.unroute('**/kv.v1.KeyValueService/Get');
    await page.getByRole('button', { name: 'Retry' }).click();
    await page.getByText('"name": "Grace"').waitFor();
  });

  test('a notice goes with the next action', async () => {
    await page.getByRole('button', { name: 'Folder app/' }).click();
    await page.getByRole('button', { name: 'Clear app/…' }).click();
    await page.getByRole('dialog', { name: 'Clear every key under app/?' }).getByRole('button', { name: 'Clear' }).click();
    await page.getByText('Cleared 2 keys under app/.').waitFor();
    await page.getByRole('button', { name: 'New key' }).click();
    await page.getByText('Cleared 2 keys under app/.').waitFor({ state: 'detached' });
  });

  test("the entry's message goes with the next action, there or elsewhere in the console, and the console's with one there", async () => {
    await openKey('user/', '1');
    await page.getByRole('button', { name: 'Edit' }).waitFor();
    await call('Set', { key: 'user/1', value: { name: 'Ada', changed: true } });
    await page.getByRole('button', { name: 'Delete…' }).click();
    await page.getByRole('dialog', { name: 'Delete user/1?' }).getByRole('button', { name: 'Delete' }).click();
    const notDeleted = page.getByText(/^Not deleted: the entry changed since it was loaded/);
    await notDeleted.waitFor();
    // A clear refused (the server could not be reached): its failure is the one shown, not the delete's too.
    await page.route('**/kv.v1.KeyValueService/Clear', (route) => route.abort());
    await page.getByRole('button', { name: 'Clear user/…' }).click();
    await page.getByRole('dialog', { name: 'Clear every key under user/?' }).getByRole('button', { name: 'Clear' }).click();
    const notCleared = page.getByText(/^the server could not be reached/);
    await notCleared.waitFor();
    expect(await notDeleted.count()).toBe(0);
    // An action in the entry: the clear's failure goes.
    await page.getByRole('button', { name: 'Reload' }).click();
    await notCleared.waitFor({ state: 'detached' });

    // Within the entry too: a refused save's message goes with Cancel (the text it spoke of is gone).
    await page.route('**/kv.v1.KeyValueService/Set', (route) => route.abort());
    await page.getByRole('button', { name: 'Edit' }).click();
    await page.getByLabel('Value of user/1 (JSON)').fill('{"name": "Ada Lovelace"}');
    await page.getByRole('button', { name: /^Save/ }).click();
    const notSaved = page.locator('section.entry').getByText(/^the server could not be reached/);
    await notSaved.waitFor();
    await page.getByRole('button', { name: 'Cancel' }).click();
    await notSaved.waitFor({ state: 'detached' });
  });

  test('focus moves to what the action opened, and back to the button after a dialog', async () => {
    await page.getByRole('button', { name: 'Folder user/' }).click();
    await expectFocus('BUTTON:1');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'user/1' }).waitFor();
    await page.getByRole('button', { name: 'Edit' }).click();
    await expectFocus('TEXTAREA#value-editor');
    await page.getByRole('button', { name: 'Cancel' }).click();
    await expectFocus('BUTTON:Edit');
    // Saved from the keyboard: focus is on Edit again, not lost to the page with the editor.
    await page.keyboard.press('Enter');
    await expectFocus('TEXTAREA#value-editor');
    await page.keyboard.type(' ');
    await page.keyboard.press('Control+Enter');
    await page.getByText(/^Saved at revision/).waitFor();
    await expectFocus('BUTTON:Edit');
    await page.getByRole('button', { name: 'Delete…' }).click();
    await page.getByRole('dialog', { name: 'Delete user/1?' }).waitFor();
    await page.keyboard.press('Escape');
    await expectFocus('BUTTON:Delete…');
    await page.getByRole('button', { name: 'Delete…' }).click();
    await page.getByRole('dialog', { name: 'Delete user/1?' }).getByRole('button', { name: 'Delete' }).click();
    await page.getByText('Deleted user/1.').waitFor();
    await expectFocus('H2#entry-title');
    await page.getByRole('button', { name: 'New key' }).click();
    await expectFocus('INPUT#new-key');
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

  test('a narrow window shows one column', async () => {
    await page.setViewportSize({ width: 480, height: 800 });
    await openKey('user/', '1');
    const tree = (await page.locator('section.tree').boundingBox())!;
    const entry = (await page.locator('section.entry').boundingBox())!;
    expect(entry.y).toBeGreaterThanOrEqual(tree.y + tree.height - 1);
    expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(480);
  });

  test('a long key or prefix wraps: the page stays as wide as the window', async () => {
    const key = `long/${'x'.repeat(3000)}`;
    await call('Set', { key, value: 1 });
    const pageWidth = (): Promise<number> => page.evaluate<number>('document.documentElement.scrollWidth');
    await page.goto(`${base}/#prefix=${encodeURIComponent('long/')}&key=${encodeURIComponent(key)}`);
    await page.reload();
    await page.getByText('Created at revision').waitFor();
    expect(await pageWidth()).toBeLessThanOrEqual(1280);
    await page.goto(`${base}/#prefix=${encodeURIComponent('é'.repeat(3000))}`);
    await page.reload();
    await page.getByText('No keys under this prefix.').waitFor();
    expect(await pageWidth()).toBeLessThanOrEqual(1280);
  });

  test('an address whose escapes are not UTF-8 opens nothing and says so; an empty key names none', async () => {
    await page.goto(`${base}/#prefix=odd%2F&key=%FF`);
    await page.reload();
    await page.getByRole('alert').getByText('its %-escapes are not UTF-8').waitFor();
    await page.getByText('Choose a key on the left, or create a new one.').waitFor();
    await page.goto(`${base}/#key=`);
    await page.reload();
    await page.getByText('Choose a key on the left, or create a new one.').waitFor();
    expect(await page.getByRole('button', { name: 'Retry' }).count()).toBe(0);
  });

  test('spaces at either end of a key stay visible', async () => {
    await call('Set', { key: ' space', value: 1 });
    await call('Set', { key: 'space', value: 2 });
    await page.reload();
    const keys = page.getByRole('list', { name: 'Keys under the root' });
    await keys.getByRole('button', { name: 'space', exact: true }).first().waitFor();
    // The same text with a leading space must take more room than without.
    const widths = await page.evaluate<Array<[string, number]>>(`
      [...document.querySelectorAll('.keys button')]
        .filter((b) => b.textContent.trim() === 'space')
        .map((b) => {
          const range = document.createRange();
          range.selectNodeContents(b);
          return [b.textContent, range.getBoundingClientRect().width];
        })`);
    const spaced = widths.find(([text]) => text === ' space')![1];
    const plain = widths.find(([text]) => text === 'space')![1];
    expect(spaced).toBeGreaterThan(plain + 2);
    await page.getByLabel('Prefix').fill(' ');
    await page.getByLabel('Prefix').press('Enter');
    await page.getByRole('button', { name: 'Clear " "…' }).click();
    await page.getByRole('dialog', { name: 'Clear every key under " "?' }).waitFor();
    await page.keyboard.press('Escape');
  });

  test('a key with bidi, invisible or control characters is shown escaped and isolated, so it cannot pass for another', async () => {
    const keys = [
      'odd/rtl \u202egnp.exe',
      'odd/zw\u200bsp',
      'odd/zwsp',
      'odd/zw\\u200bsp',
      'odd/tab\there',
      'odd/line\nbreak',
      'odd/bom\ufeff',
    ];
    for (const key of keys) await call('Set', { key, value: 1 });
    await page.reload();
    await page.getByRole('button', { name: 'Folder odd/' }).click();
    const list = page.getByRole('list', { name: 'Keys under odd/' });
    await list.getByRole('button').first().waitFor();
    const shown = await list.getByRole('button').evaluateAll((buttons) =>
      buttons.map((b) => ({
        text: b.textContent,
        escapes: b.querySelectorAll('.escape').length,
        height: b.getBoundingClientRect().height,
      })),
    );
    expect(shown.map(({ text, escapes }) => [text, escapes]).sort()).toEqual(
      [
        ['"rtl \\u202egnp.exe"', 1],
        ['"zw\\u200bsp"', 1],
        ['zwsp', 0],
        // Text that only reads like an escape is not marked as one, nor quoted.
        ['zw\\u200bsp', 0],
        ['"tab\\there"', 1],
        ['"line\\nbreak"', 1],
        ['"bom\\ufeff"', 1],
      ].sort(),
    );
    // One line each: a newline in a key does not spread it over two.
    expect(new Set(shown.map(({ height }) => height)).size).toBe(1);

    await list.getByRole('button', { name: 'rtl \\u202egnp.exe' }).click();
    const heading = page.getByRole('heading', { name: 'odd/rtl \\u202egnp.exe' });
    await heading.waitFor();
    // Isolated, left to right whatever surrounds it; drawn in the order it is stored: ".exe" right of "gnp" (a raw U+202E puts it left).
    const drawn = await page.evaluate<{ bidi: string[]; gnp: number; exe: number }>(`(() => {
      const bdi = document.querySelector('#entry-title bdi');
      const text = [...bdi.childNodes].find((node) => node.textContent.includes('gnp'));
      const at = (word) => {
        const range = document.createRange();
        const start = text.textContent.indexOf(word);
        range.setStart(text, start);
        range.setEnd(text, start + word.length);
        return range.getBoundingClientRect().left;
      };
      return { bidi: [getComputedStyle(bdi).unicodeBidi, getComputedStyle(bdi).direction], gnp: at('gnp'), exe: at('.exe') };
    })()`);
    expect(drawn.bidi).toEqual(['isolate', 'ltr']);
    expect(drawn.exe).toBeGreaterThan(drawn.gnp);
    await page.getByRole('button', { name: 'Edit' }).click();
    await page.getByLabel('Value of "odd/rtl \\u202egnp.exe" (JSON)').waitFor();
    await page.getByRole('button', { name: 'Cancel' }).click();
    await page.getByRole('button', { name: 'Delete…' }).click();
    await page.getByRole('dialog', { name: 'Delete "odd/rtl \\u202egnp.exe"?' }).getByRole('button', { name: 'Delete' }).click();
    await page.getByText('Deleted "odd/rtl \\u202egnp.exe".').waitFor();
    expect(await valueOf('odd/rtl \u202egnp.exe')).toBeUndefined();

    await page.getByRole('button', { name: 'Live view' }).click();
    await page.getByText(/^Following; current to revision/).waitFor();
    await call('Set', { key: 'odd/zw\u200bsp', value: 2 });
    await page.getByRole('table').locator('tbody tr').first().waitFor();
    expect(await page.getByRole('table').locator('tbody tr').allTextContents()).toEqual([
      expect.stringMatching(/^\d+set"odd\/zw\\u200bsp"2$/),
    ]);
  });

  test('a value with bidi, invisible or odd-space characters shows and edits them as escapes, and saves unchanged', async () => {
    const value = { amount: '\u202e0001', 'zw\u200bkey': 'a\u200bb', nbsp: 'x\u00a0y', c1: '\u0085', family: '👨‍👩‍👧', typed: '\\u200b' };
    await call('Set', { key: 'app/odd', value });
    await openKey('app/', 'odd');
    // "\u202e0001" would read "1000" (and reverse the JSON around it); a zero-width space, "ab".
    const shown = [
      '"amount": "\\u202e0001"',
      '"zw\\u200bkey": "a\\u200bb"',
      '"nbsp": "x\\u00a0y"',
      '"c1": "\\u0085"',
      '"family": "👨‍👩‍👧"',
      '"typed": "\\\\u200b"',
    ];
    const text = (await page.getByLabel('Value').textContent())!;
    for (const line of shown) expect(text).toContain(line);
    await page.getByText('History (1 version)').waitFor();
    expect(await page.locator('.history').textContent()).toContain('"amount":"\\u202e0001"');
    await page.getByRole('button', { name: 'Edit' }).click();
    const editor = page.getByLabel('Value of app/odd (JSON)');
    for (const line of shown) expect(await editor.inputValue()).toContain(line);
    // Saved as it stands: the escapes are JSON's own, so the value is the same, character for character.
    await editor.press('Control+Enter');
    await page.getByText(/^Saved at revision/).waitFor();
    expect(await valueOf('app/odd')).toEqual(value);
  });

  test('an emoji key is shown as itself; a joiner or selector outside an emoji, and a key with escapes, read apart from look-alike text', async () => {
    const keys = [
      'emoji/\u2764\ufe0f',
      'emoji/\u{1f468}\u200d\u{1f469}\u200d\u{1f467}',
      'emoji/a\u200db',
      'emoji/a\ufe0f',
      'emoji/zw\u200bsp',
      'emoji/zw\\u200bsp',
    ];
    for (const key of keys) await call('Set', { key, value: 1 });
    await page.reload();
    await page.getByRole('button', { name: 'Folder emoji/' }).click();
    const list = page.getByRole('list', { name: 'Keys under emoji/' });
    await list.getByRole('button').first().waitFor();
    const shown = await list
      .getByRole('button')
      .evaluateAll((buttons) => buttons.map((b) => [b.textContent, b.querySelectorAll('.escape').length]));
    expect(shown.sort()).toEqual(
      [
        ['\u2764\ufe0f', 0],
        ['\u{1f468}\u200d\u{1f469}\u200d\u{1f467}', 0],
        ['"a\\u200db"', 1],
        ['"a\\ufe0f"', 1],
        ['"zw\\u200bsp"', 1],
        ['zw\\u200bsp', 0],
      ].sort(),
    );
    // What a screen reader hears, as Chromium's accessibility tree names each key: a real U+200B and the text \u200b differ.
    const cdp = await page.context().newCDPSession(page);
    const { nodes } = (await cdp.send('Accessibility.getFullAXTree')) as {
      nodes: { role?: { value: string }; name?: { value: string } }[];
    };
    const buttonNames = nodes.filter((node) => node.role?.value === 'button').map((node) => node.name?.value);
    expect(buttonNames).toEqual(expect.arrayContaining(['"zw\\u200bsp"', 'zw\\u200bsp', '"a\\u200db"', '\u2764\ufe0f']));
    await cdp.detach();
    await list.getByRole('button', { name: '"zw\\u200bsp"', exact: true }).click();
    await page.getByRole('heading', { name: '"emoji/zw\\u200bsp"', exact: true }).waitFor();
    await list.getByRole('button', { name: 'zw\\u200bsp', exact: true }).click();
    await page.getByRole('heading', { name: 'emoji/zw\\u200bsp', exact: true }).waitFor();
  });

  /** app/flags edited to {"mine": 1}, deleted meanwhile through the API, then saved: the conflict shown. */
  async function saveEditOfDeletedKey(): Promise<Locator> {
    await openKey('app/', 'flags');
    await page.getByRole('button', { name: 'Edit' }).click();
    await page.getByLabel('Value of app/flags (JSON)').fill('{"mine": 1}');
    await call('Delete', { key: 'app/flags' });
    await page.getByRole('button', { name: /^Save/ }).click();
    const conflict = page.getByRole('group', { name: 'Someone else changed this entry while you were editing' });
    await conflict.getByText(/It has since been deleted/).waitFor();
    return conflict;
  }

  test('a key deleted while being edited: "Keep mine" says it creates it again, and does', async () => {
    const conflict = await saveEditOfDeletedKey();
    expect(await conflict.getByRole('button', { name: /^Keep mine/ }).textContent()).toBe('Keep mine (create it again)');
    await conflict.getByRole('button', { name: 'Keep mine (create it again)' }).click();
    await page.getByText(/^Saved at revision/).waitFor();
    expect(await valueOf('app/flags')).toEqual({ mine: 1 });
  });

  test('a conflict with a key deleted and created again names the right revisions', async () => {
    const conflict = await saveEditOfDeletedKey();
    const again = (await call('Set', { key: 'app/flags', value: { theirs: 1 } })).json as { revision: string };
    await conflict.getByRole('button', { name: /^Keep mine/ }).click();
    await conflict.getByText(new RegExp(`created again, at revision ${again.revision}\\.`)).waitFor();
    expect(await conflict.textContent()).not.toMatch(/You started from revision (\d+)\. It is now at revision \1\./);
  });

  test('Load more pages stay loaded after a save', async () => {
    for (let i = 0; i < 60; i++) await call('Set', { key: `many/${String(i).padStart(2, '0')}`, value: i });
    await page.reload();
    await page.getByRole('button', { name: 'Folder many/' }).click();
    const many = page.getByRole('list', { name: 'Keys under many/' });
    await many.getByRole('button', { name: '49' }).waitFor();
    await page.getByRole('button', { name: 'Load more' }).click();
    await many.getByRole('button', { name: '59' }).click();
    await page.getByRole('button', { name: 'Edit' }).click();
    await page.getByLabel('Value of many/59 (JSON)').fill('590');
    await page.getByRole('button', { name: /^Save/ }).click();
    await page.getByText(/^Saved at revision/).waitFor();
    await waitUntil(async () => (await many.getByRole('button').count()) === 60, 'the listing to hold 60 keys', 2000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await many.getByRole('button').count()).toBe(60);
  });

  test('leaving the page with an unsaved edit asks first', async () => {
    // A page of its own: it is closed, as a person closes the tab, which runs beforeunload.
    const other = await browser.context.newPage();
    other.setDefaultTimeout(PAGE_WAIT_MS);
    const asked = new Promise<string>((resolve) =>
      other.once('dialog', (dialog) => {
        resolve(dialog.type());
        void dialog.accept();
      }),
    );
    await other.goto(`${base}/`);
    await other.getByRole('button', { name: 'Folder user/' }).click();
    await other.getByRole('list', { name: 'Keys under user/' }).getByRole('button', { name: '2', exact: true }).click();
    await other.getByRole('button', { name: 'Edit' }).click();
    await other.getByLabel('Value of user/2 (JSON)').press('End');
    await other.keyboard.type(' ');
    await other.close({ runBeforeUnload: true });
    const type = await orAfter(asked, 3000, 'no dialog');
    expect(type).toBe('beforeunload');
    await page.bringToFront();
  });

  test('the address names the folder and entry shown: a reload keeps them, Back walks back within the console', async () => {
    await openKey('user/', '1');
    await waitUntil(() => Promise.resolve(new URL(page.url()).hash === '#prefix=user%2F&key=user%2F1'), 'the address to name user/1');
    await page.reload();
    await page.getByText('"name": "Ada"').waitFor();
    await page.goBack();
    await page.getByText('Choose a key on the left, or create a new one.').waitFor();
    await page.getByRole('list', { name: 'Keys under user/' }).waitFor();
    await page.goBack();
    await page.getByRole('list', { name: 'Keys under the root' }).waitFor();
    await waitUntil(() => Promise.resolve(new URL(page.url()).hash === ''), 'the address to name the root');

    // Back, or another key, with an unsaved edit asks first (this page's dialogs are answered "Cancel": the edit stays).
    await page.goForward();
    await page.goForward();
    await page.getByRole('button', { name: 'Edit' }).click();
    await page.getByLabel('Value of user/1 (JSON)').fill('{"name": "Ada Lovelace"}');
    const asked = new Promise<string>((resolve) => page.once('dialog', (dialog) => resolve(dialog.type())));
    await page.goBack();
    await expect(orAfter(asked, 3000, 'no dialog')).resolves.toBe('confirm');
    await expect(page.getByLabel('Value of user/1 (JSON)').inputValue()).resolves.toBe('{"name": "Ada Lovelace"}');
    await page.getByRole('list', { name: 'Keys under user/' }).getByRole('button', { name: '2', exact: true }).click();
    await expect(page.getByLabel('Value of user/1 (JSON)').inputValue()).resolves.toBe('{"name": "Ada Lovelace"}');
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

/** Polls until `ok` holds, failing with what was awaited after `ms`. */
async function waitUntil(ok: () => Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The focused element as TAG#id, or TAG:text when it has no id. */
async function expectFocus(expected: string): Promise<void> {
  const focused = (): Promise<string> =>
    page.evaluate<string>(`(() => {
      const element = document.activeElement;
      if (element === null) return 'none';
      return element.id !== '' ? element.tagName + '#' + element.id : element.tagName + ':' + (element.textContent ?? '');
    })()`);
  await waitUntil(async () => (await focused()) === expected, `focus on ${expected}`, 3000).catch(async (error: Error) => {
    throw new Error(`${error.message}; focus is on ${await focused()}`);
  });
}

/** What `promise` gives, or `otherwise` after `ms`. */
async function orAfter<T>(promise: Promise<T>, ms: number, otherwise: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<T>((resolve) => (timer = setTimeout(() => resolve(otherwise), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

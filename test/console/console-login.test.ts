/**
 * The console on a server with an auth file: it asks for a token, says so
 * when the server refuses it, works with one it accepts (as that token's
 * role allows), and forgets it on sign-out.
 */
import type { Page } from 'playwright-core';
import { writeAuthFile, type AuthFixture } from '../support/auth-fixture';
import { describeWithChromium, launchBrowser, type Browser } from '../support/browser';
import { startServer, type RunningServer } from '../support/server-process';
import { makeTempDir } from '../support/temp-dirs';

let server: RunningServer;
let browser: Browser;
let page: Page;
let auth: AuthFixture;

describeWithChromium('the web console with tokens', () => {
  beforeAll(async () => {
    auth = writeAuthFile(makeTempDir('kv-console-auth-'), {
      roles: { reader: [{ prefix: 'app/', permission: 'read' }], writer: [{ prefix: 'app/', permission: 'write' }] },
      tokens: { viewer: 'reader', app: 'writer' },
    });
    server = await startServer({ args: ['--http-listen', '127.0.0.1:0', '--auth-file', auth.file] });
    const set = await fetch(`http://${server.httpAddress}/kv.v1.KeyValueService/Set`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${auth.tokens.app}` },
      body: JSON.stringify({ key: 'app/config', value: { replicas: 3 } }),
    });
    expect(set.status).toBe(200);
    browser = await launchBrowser();
    page = await browser.context.newPage();
  });

  afterAll(async () => {
    await browser?.close();
    expect(await server.stop()).toBe(0);
  });

  test('asks for a token, refuses a wrong one, works with a right one as far as its role goes, and signs out', async () => {
    await page.goto(`http://${server.httpAddress}/`);
    const token = page.getByLabel('Token');
    await token.fill('kv_not-a-real-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('The server did not accept that token.').waitFor();

    await token.fill(auth.tokens.viewer);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByLabel('Prefix').fill('app/');
    await page.getByLabel('Prefix').press('Enter');
    await page.getByRole('button', { name: 'config', exact: true }).click();
    await page.getByText('"replicas": 3').waitFor();

    // A reader may look, not write: the server's refusal is shown as it worded it.
    await page.getByRole('button', { name: 'Edit' }).click();
    await page.getByLabel('Value of app/config (JSON)').fill('{"replicas": 4}');
    await page.getByRole('button', { name: /^Save/ }).click();
    await page.getByText(/^permission denied: write on key "app\/config"/).waitFor();

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Token').waitFor();
    // Forgotten, not just hidden: a reload asks again.
    await page.reload();
    await page.getByLabel('Token').waitFor();
  });
});

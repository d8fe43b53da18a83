/**
 * The console on a server with an auth file: it asks for a token, says so
 * when the server refuses it, works with one it accepts (as that token's
 * role allows), and forgets it on sign-out.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { Dialog, Page } from 'playwright-core';
import { writeAuthFile, type AuthFixture } from '../support/auth-fixture';
import { PAGE_WAIT_MS, describeWithChromium, launchBrowser, type Browser } from '../support/browser';
import { startServer, type RunningServer } from '../support/server-process';
import { makeTempDir, pollUntil } from '../support/temp-dirs';

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
    // Each wrong token, and each call refused mid-session (kv_revoked), spends one of these within the minute the tests take.
    server = await startServer({ args: ['--http-listen', '127.0.0.1:0', '--auth-file', auth.file, '--auth-failures-per-minute', '10'] });
    const set = await fetch(`http://${server.httpAddress}/kv.v1.KeyValueService/Set`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${auth.tokens.app}` },
      body: JSON.stringify({ key: 'app/config', value: { replicas: 3 } }),
    });
    expect(set.status).toBe(200);
    browser = await launchBrowser();
    page = await browser.context.newPage();
    // Each wait fails within PAGE_WAIT_MS (unless it says otherwise), so a broken flow fails the test, not the suite's timeout.
    page.setDefaultTimeout(PAGE_WAIT_MS);
  });

  afterAll(async () => {
    await browser?.close();
    expect(await server.stop()).toBe(0);
  });

  test('the sign-in form is whole and centred in the window, wide or narrow', async () => {
    await page.goto(`http://${server.httpAddress}/`);
    const form = page.locator('main.login form');
    for (const viewport of [
      { width: 1280, height: 800 },
      { width: 1920, height: 1080 },
      { width: 600, height: 800 },
    ]) {
      await page.setViewportSize(viewport);
      await form.getByLabel('Token').waitFor();
      const box = (await form.boundingBox())!;
      const width = await page.evaluate<number>('document.documentElement.clientWidth');
      expect({
        viewport,
        left: box.x >= 0,
        right: box.x + box.width <= width,
        top: box.y >= 0,
        bottom: box.y + box.height <= viewport.height,
      }).toEqual({ viewport, left: true, right: true, top: true, bottom: true });
      expect(Math.abs(box.x + box.width / 2 - width / 2)).toBeLessThanOrEqual(3);
    }
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  test('a prefix typed as soon as the console shows after a sign-in is kept: listing again does not set the box after it', async () => {
    const fresh = await browser.context.newPage();
    try {
      fresh.setDefaultTimeout(PAGE_WAIT_MS);
      await fresh.goto(`http://${server.httpAddress}/`);
      await fresh.getByLabel('Token').fill(auth.tokens.app);
      // Timers and animation frames held: preact's effects (the listing after the sign-in) wait, as on a busy machine.
      await fresh.clock.install();
      await fresh.clock.pauseAt(Date.now() + 1000);
      await fresh.getByRole('button', { name: 'Sign in' }).click();
      await fresh.getByLabel('Prefix').fill('app/');
      await fresh.clock.resume();
      // The listing after the sign-in has run (this role may not list the root: it says so), and the box still holds what
      // was typed.
      await fresh.getByText(/^Could not list the keys: permission denied/).waitFor();
      expect(await fresh.getByLabel('Prefix').inputValue()).toBe('app/');
      await fresh.getByLabel('Prefix').press('Enter');
      await fresh.getByRole('button', { name: 'config', exact: true }).waitFor();
    } finally {
      await fresh.close();
    }
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

    // The refused edit is not saved: Sign out asks before dropping it (answered OK).
    page.once('dialog', (dialog) => void dialog.accept());
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Token').waitFor();
    // Forgotten, not just hidden: a reload asks again.
    await page.reload();
    await page.getByLabel('Token').waitFor();
  });

  test('an edit survives a token refused mid-session, and is saved after signing in again', async () => {
    await page.goto(`http://${server.httpAddress}/`);
    await signIn(auth.tokens.app);
    await page.getByLabel('Prefix').fill('app/');
    await page.getByLabel('Prefix').press('Enter');
    await page.getByRole('button', { name: 'config', exact: true }).click();
    await page.getByRole('button', { name: 'Edit' }).click();
    await page.getByLabel('Value of app/config (JSON)').fill('{"replicas": 5}');
    // The server refuses the token on this one call (as after a token is revoked and the person is given a new one).
    await page.route('**/kv.v1.KeyValueService/Set', (route) =>
      route.continue({ headers: { ...route.request().headers(), authorization: 'Bearer kv_revoked' } }),
    );
    await page.getByRole('button', { name: /^Save/ }).click();
    await page.getByLabel('Token').waitFor();
    await page.unroute('**/kv.v1.KeyValueService/Set');
    await signIn(auth.tokens.app);
    await expect(page.getByLabel('Value of app/config (JSON)').inputValue()).resolves.toBe('{"replicas": 5}');
    await page.getByRole('button', { name: /^Save/ }).click();
    await page.getByText(/^Saved at revision/).waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();
  });

  test('a delete refused for its token mid-session brings up the sign-in; signed in again, it deletes', async () => {
    const set = await fetch(`http://${server.httpAddress}/kv.v1.KeyValueService/Set`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${auth.tokens.app}` },
      body: JSON.stringify({ key: 'app/doomed', value: 1 }),
    });
    expect(set.status).toBe(200);
    await page.goto(`http://${server.httpAddress}/`);
    await signIn(auth.tokens.app);
    await page.getByLabel('Prefix').fill('app/');
    await page.getByLabel('Prefix').press('Enter');
    await page.getByRole('button', { name: 'doomed', exact: true }).click();
    await page.route('**/kv.v1.KeyValueService/Delete', (route) =>
      route.continue({ headers: { ...route.request().headers(), authorization: 'Bearer kv_revoked' } }),
    );
    await page.getByRole('button', { name: 'Delete…' }).click();
    await page.getByRole('dialog', { name: 'Delete app/doomed?' }).getByRole('button', { name: 'Delete' }).click();
    await page.getByLabel('Token').waitFor();
    await page.unroute('**/kv.v1.KeyValueService/Delete');
    await signIn(auth.tokens.app);
    await page.getByRole('button', { name: 'Delete…' }).click();
    await page.getByRole('dialog', { name: 'Delete app/doomed?' }).getByRole('button', { name: 'Delete' }).click();
    await page.getByText('Deleted app/doomed.').waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();
  });

  test('a lease lookup refused for its token mid-session brings up the sign-in; signed in again, the lease is shown', async () => {
    const set = await fetch(`http://${server.httpAddress}/kv.v1.KeyValueService/Set`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${auth.tokens.app}` },
      body: JSON.stringify({ key: 'app/session', value: 1, ttlMs: '600000' }),
    });
    expect(set.status).toBe(200);
    await page.goto(`http://${server.httpAddress}/`);
    await signIn(auth.tokens.app);
    await page.getByLabel('Prefix').fill('app/');
    await page.getByLabel('Prefix').press('Enter');
    await page.route('**/kv.v1.KeyValueService/LeaseInfo', (route) =>
      route.continue({ headers: { ...route.request().headers(), authorization: 'Bearer kv_revoked' } }),
    );
    await page.getByRole('button', { name: 'session', exact: true }).click();
    await page.getByLabel('Token').waitFor();
    await page.unroute('**/kv.v1.KeyValueService/LeaseInfo');
    await signIn(auth.tokens.app);
    await page
      .locator('.lease')
      .getByText(/deleted when it expires, in \d+ s \(time to live 600 s\)\.$/)
      .waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();
  });

  test("an entry's History refused for its token mid-session brings up the sign-in; signed in again, it is shown", async () => {
    for (const value of [1, 2]) {
      const set = await fetch(`http://${server.httpAddress}/kv.v1.KeyValueService/Set`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${auth.tokens.app}` },
        body: JSON.stringify({ key: 'app/versions', value }),
      });
      expect(set.status).toBe(200);
    }
    await page.goto(`http://${server.httpAddress}/`);
    await signIn(auth.tokens.app);
    await page.getByLabel('Prefix').fill('app/');
    await page.getByLabel('Prefix').press('Enter');
    // Another failure (the server could not be reached) is said in place, without the sign-in.
    await page.route('**/kv.v1.KeyValueService/Watch', (route) => route.abort());
    await page.getByRole('button', { name: 'config', exact: true }).click();
    await page.locator('details.history summary').click();
    await page.getByText(/^History unavailable: the server could not be reached/).waitFor();
    expect(await page.getByLabel('Token').count()).toBe(0);
    await page.unroute('**/kv.v1.KeyValueService/Watch');

    await page.route('**/kv.v1.KeyValueService/Watch', (route) =>
      route.continue({ headers: { ...route.request().headers(), authorization: 'Bearer kv_revoked' } }),
    );
    await page.getByRole('button', { name: 'versions', exact: true }).click();
    await page.getByLabel('Token').waitFor();
    await page.unroute('**/kv.v1.KeyValueService/Watch');
    await signIn(auth.tokens.app);
    await page.getByText('History (2 versions)').waitFor();
    expect(await page.getByText(/^History unavailable/).count()).toBe(0);
    await page.getByRole('button', { name: 'Sign out' }).click();
  });

  test('Sign out with an edit or a conflict not saved asks first; kept, the console stays signed in with it', async () => {
    const set = (value: unknown): Promise<Response> =>
      fetch(`http://${server.httpAddress}/kv.v1.KeyValueService/Set`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${auth.tokens.app}` },
        body: JSON.stringify({ key: 'app/draft', value }),
      });
    expect((await set(1)).status).toBe(200);
    await page.goto(`http://${server.httpAddress}/`);
    await signIn(auth.tokens.app);
    await page.getByLabel('Prefix').fill('app/');
    await page.getByLabel('Prefix').press('Enter');
    await page.getByRole('button', { name: 'draft', exact: true }).click();
    await page.getByRole('button', { name: 'Edit' }).click();
    const editor = page.getByLabel('Value of app/draft (JSON)');
    await editor.fill('2');
    // Answered "Cancel" first: the edit is kept, and so is the session.
    const dialogs = answerDialogs();
    const { asked } = dialogs;
    try {
      await page.getByRole('button', { name: 'Sign out' }).click();
      await pollUntil('a question on Sign out', () => (asked.length === 1 ? true : undefined));
      await expect(editor.inputValue()).resolves.toBe('2');
      expect(await page.getByLabel('Token').count()).toBe(0);

      // A conflict (someone else saved meanwhile) holds the text not saved too.
      expect((await set(3)).status).toBe(200);
      await page.getByRole('button', { name: /^Save/ }).click();
      const conflict = page.getByRole('group', { name: 'Someone else changed this entry while you were editing' });
      await conflict.waitFor();
      await page.getByRole('button', { name: 'Sign out' }).click();
      await pollUntil('a question on Sign out', () => (asked.length === 2 ? true : undefined));
      await conflict.waitFor();
      expect(await page.getByLabel('Token').count()).toBe(0);

      // Answered "OK": signed out.
      dialogs.answer = 'accept';
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByLabel('Token').waitFor();
      expect(asked).toEqual(Array(3).fill('Discard the changes you have not saved?'));
    } finally {
      dialogs.stop();
    }
  });

  test('Sign out from a new key not yet created asks first; kept, the form stays as it was', async () => {
    await page.goto(`http://${server.httpAddress}/`);
    await signIn(auth.tokens.app);
    await page.getByRole('button', { name: 'New key' }).click();
    await page.getByLabel('Key', { exact: true }).fill('app/unsaved');
    await page.getByLabel('Value (JSON)').fill('{"draft": true}');
    const dialogs = answerDialogs();
    const { asked } = dialogs;
    try {
      await page.getByRole('button', { name: 'Sign out' }).click();
      await pollUntil('a question on Sign out', () => (asked.length === 1 ? true : undefined));
      await expect(page.getByLabel('Key', { exact: true }).inputValue()).resolves.toBe('app/unsaved');
      await expect(page.getByLabel('Value (JSON)').inputValue()).resolves.toBe('{"draft": true}');
      expect(await page.getByLabel('Token').count()).toBe(0);
      dialogs.answer = 'accept';
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByLabel('Token').waitFor();
      expect(asked).toEqual(Array(2).fill('Discard the changes you have not saved?'));
    } finally {
      dialogs.stop();
    }
  });

  test('a refusal shown to one user is gone when the next signs in', async () => {
    await page.goto(`http://${server.httpAddress}/`);
    await signIn(auth.tokens.viewer);
    await page.getByLabel('Prefix').fill('app/');
    await page.getByLabel('Prefix').press('Enter');
    await page.getByRole('button', { name: 'Clear app/…' }).click();
    await page.getByRole('dialog', { name: 'Clear every key under app/?' }).getByRole('button', { name: 'Clear' }).click();
    await page.getByText(/^permission denied/).waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await signIn(auth.tokens.app);
    await page.getByLabel('Prefix').fill('app/');
    await page.getByLabel('Prefix').press('Enter');
    await page.getByRole('button', { name: 'config', exact: true }).waitFor();
    expect(await page.getByText(/^permission denied/).count()).toBe(0);
    await page.getByRole('button', { name: 'Sign out' }).click();
  });

  test('a pasted token with a character no token has, or no token at all, is refused in plain words, without asking the server', async () => {
    await page.goto(`http://${server.httpAddress}/`);
    // The console asks the server once as it loads (is a token needed?): record only what signing in sends, after the login screen is up.
    await page.getByLabel('Token').waitFor();
    const calls: string[] = [];
    // Calls that carry a token: what a sign-in sends (the console's own calls as it loads, and their retries, carry none).
    const record = (request: { url(): string; headers(): Record<string, string> }): void =>
      void (request.url().includes('/kv.v1.') && request.headers().authorization !== undefined && calls.push(request.url()));
    page.on('request', record);
    for (const pasted of [`${auth.tokens.app}\u0000`, `kv_\u202etoken`, 'kv_two words']) {
      await page.getByLabel('Token').fill(pasted);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page
        .getByRole('alert')
        .filter({ hasText: /^That token contains characters a token cannot have/ })
        .waitFor();
      await page.getByLabel('Token').fill('');
    }
    // Nothing at all (or only spaces): said, not a Sign in that does nothing.
    for (const typed of ['', '   ']) {
      await page.getByLabel('Token').fill(typed);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page
        .getByRole('alert')
        .filter({ hasText: /^Enter a token\.$/ })
        .waitFor();
      // Another refusal in between (not sent either), so each round's is its own.
      await page.getByLabel('Token').fill('kv_two words');
      await page.getByLabel('Token').press('Enter');
      await page
        .getByRole('alert')
        .filter({ hasText: /^That token contains/ })
        .waitFor();
    }
    page.off('request', record);
    expect(calls).toEqual([]);
    expect(await page.getByText(/Headers|Invalid value/).count()).toBe(0);
    await signIn(auth.tokens.app);
    await page.getByRole('button', { name: 'Sign out' }).click();
  });

  test('the refusal of a token revoked mid-session (auth file changed, SIGHUP) is gone once signed in again', async () => {
    // A server of its own: its auth file is rewritten, and the refusals here do not count against the other tests' limit.
    const dir = makeTempDir('kv-console-revoke-');
    const roles = { writer: [{ prefix: 'app/', permission: 'write' as const }] };
    const first = writeAuthFile(dir, { roles, tokens: { app: 'writer' } });
    const second = writeAuthFile(dir, { roles, tokens: { ops: 'writer' } }, 'second.json');
    const [firstFile, secondFile] = [readFileSync(first.file, 'utf8'), readFileSync(second.file, 'utf8')];
    // Logged at info: each reload says so, so the test knows it applied without sending a token that may be refused.
    const own = await startServer({ args: ['--http-listen', '127.0.0.1:0', '--auth-file', first.file], env: { KV_LOG_LEVEL: 'info' } });
    /** Puts `text` in the auth file and waits until the server has read it. */
    const reloadWith = async (text: string): Promise<void> => {
      const reloads = (): number => own.output().split('auth file reloaded').length - 1;
      const before = reloads();
      writeFileSync(first.file, text);
      own.child.kill('SIGHUP');
      await pollUntil('the auth file reloaded', () => (reloads() > before ? true : undefined));
    };
    const refusal = page.getByRole('alert').filter({ hasText: /unknown or revoked token/ });
    try {
      await page.goto(`http://${own.httpAddress}/`);
      await signIn(first.tokens.app);

      // An edit open as its token is revoked: the save is refused, the sign-in comes; signed in with another, no refusal.
      await page.getByRole('button', { name: 'New key' }).click();
      await page.getByLabel('Key', { exact: true }).fill('app/x');
      await page.getByLabel('Value (JSON)').fill('1');
      await page.getByRole('button', { name: 'Create' }).click();
      await page.getByRole('heading', { name: 'app/x' }).waitFor();
      await page.getByRole('button', { name: 'Edit' }).click();
      await page.getByLabel('Value of app/x (JSON)').fill('2');
      await reloadWith(secondFile);
      await page.getByRole('button', { name: /^Save/ }).click();
      await page.getByLabel('Token').waitFor();
      await signIn(second.tokens.ops);
      await expect(page.getByLabel('Value of app/x (JSON)').inputValue()).resolves.toBe('2');
      expect(await refusal.count()).toBe(0);
      await page.getByRole('button', { name: /^Save/ }).click();
      await page.getByText(/^Saved at revision/).waitFor();

      // The same for a new key not created yet.
      await page.getByRole('button', { name: 'New key' }).click();
      await page.getByLabel('Key', { exact: true }).fill('app/y');
      await page.getByLabel('Value (JSON)').fill('3');
      await reloadWith(firstFile);
      await page.getByRole('button', { name: 'Create' }).click();
      await page.getByLabel('Token').waitFor();
      await signIn(first.tokens.app);
      await expect(page.getByLabel('Key', { exact: true }).inputValue()).resolves.toBe('app/y');
      expect(await refusal.count()).toBe(0);
      await page.getByRole('button', { name: 'Create' }).click();
      await page.getByRole('heading', { name: 'app/y' }).waitFor();
      await page.getByRole('button', { name: 'Sign out' }).click();
    } finally {
      expect(await own.stop()).toBe(0);
    }
  });

  test('too many wrong tokens keep the login screen, saying when to retry', async () => {
    // A server of its own that allows one failure a minute: once it limits this address, a refill (a minute away) cannot
    // let the right token in while the test looks; and the other tests' refusals do not count here.
    const own = await startServer({ args: ['--http-listen', '127.0.0.1:0', '--auth-file', auth.file, '--auth-failures-per-minute', '1'] });
    try {
      await page.goto(`http://${own.httpAddress}/`);
      await page.getByLabel('Token').fill('kv_wrong-1');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByText('The server did not accept that token.').waitFor();
      await page.getByLabel('Token').fill('kv_wrong-2');
      await page.getByRole('button', { name: 'Sign in' }).click();
      const limited = page.getByText(/^Too many attempts from this address: .* retry in \d+ s\.$/);
      await limited.waitFor();
      // The right token is not even checked while the address is limited.
      await page.getByLabel('Token').fill(auth.tokens.app);
      const answered = page.waitForResponse((response) => response.url().endsWith('/ListKeys'));
      await page.getByRole('button', { name: 'Sign in' }).click();
      await answered;
      // The answer handled: the form again (its button no longer busy), or the signed-in view.
      const signIn = page.getByRole('button', { name: 'Sign in' });
      await pollUntil(
        'the sign-in to be handled',
        async () =>
          (await page.getByLabel('Prefix').isVisible()) || ((await signIn.isVisible()) && (await signIn.isEnabled())) ? true : undefined,
        PAGE_WAIT_MS,
      );
      expect([await limited.isVisible(), await page.getByLabel('Token').isVisible(), await page.getByLabel('Prefix').isVisible()]).toEqual([
        true,
        true,
        false,
      ]);
    } finally {
      expect(await own.stop()).toBe(0);
    }
  });
});

async function signIn(token: string): Promise<void> {
  await page.getByLabel('Token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByLabel('Prefix').waitFor();
}

/** Answers the page's dialogs, dismissing them until `answer` is set to 'accept', and notes what each asked; until `stop()`. */
function answerDialogs(): { asked: string[]; answer: 'accept' | 'dismiss'; stop: () => void } {
  const ask = (dialog: Dialog): void => {
    dialogs.asked.push(dialog.message());
    void dialog[dialogs.answer]();
  };
  const dialogs = { asked: [] as string[], answer: 'dismiss' as 'accept' | 'dismiss', stop: () => void page.off('dialog', ask) };
  page.on('dialog', ask);
  return dialogs;
}

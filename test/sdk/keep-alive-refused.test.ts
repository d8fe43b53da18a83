/**
 * A KeepAlive the server refuses is not retried: `lost` resolves at once
 * with the server's code, reason and message. Retrying a refusal every
 * second until the time to live ran out hid it behind a late UNAVAILABLE,
 * filled the audit log, and (with a token no longer valid) spent the
 * address's budget of failed authentications, so that other clients on the
 * same host were refused AUTH_RATE_LIMITED. On a real server with an auth
 * file: a lease another role's key is on (PERMISSION_DENIED: that lease
 * only, the client's other leases are kept), and a token removed from the
 * file under an open stream (UNAUTHENTICATED: every lease).
 */
import { KvClient, status, type KeepAliveHandle, type KvError } from '@kv/client';
import { writeAuthFile, type AuthFileSpec } from '../support/auth-fixture';
import { startServer, type RunningServer } from '../support/server-process';
import { makeTempDir, pollUntil } from '../support/temp-dirs';

const SPEC: AuthFileSpec = {
  roles: {
    writer: [{ prefix: 'app/', permission: 'write' }],
    // Reads app/, writes only its own prefix: it can grant leases, but not keep one an app/ key is on.
    other: [
      { prefix: 'app/', permission: 'read' },
      { prefix: 'other/', permission: 'write' },
    ],
  },
  tokens: { writer: 'writer', other: 'other', doomed: 'writer' },
};

let dir: string;
let tokens: Record<string, string>;
let server: RunningServer;
const clients: KvClient[] = [];

beforeAll(async () => {
  dir = makeTempDir('kv-keepalive-refused-');
  ({ tokens } = writeAuthFile(dir, SPEC));
  server = await startServer({ args: ['--auth-file', `${dir}/auth.json`] });
});
afterAll(async () => {
  for (const kv of clients) kv.close();
  expect(await server.stop()).toBe(0);
});

function client(token: string): KvClient {
  const kv = new KvClient(server.address, { token, deadlineMs: 5000 });
  clients.push(kv);
  return kv;
}

/** `handle.lost` as it is so far, looked at without waiting. */
function lostSoFar(handle: KeepAliveHandle): () => KvError | undefined {
  let lost: KvError | undefined;
  void handle.lost.then((error) => (lost = error));
  return () => lost;
}

/** The server's complete audit lines so far about KeepAlive, parsed. */
function keepAliveDenials(): Array<Record<string, unknown>> {
  return server
    .output()
    .split('\n')
    .slice(0, -1)
    .filter((line) => line.includes('"audit":"denied"') && line.includes('/kv.v1.KeyValueService/KeepAlive'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** Waits `ms` (polling the clock, as the other tests do), for retries that should not come to show. */
async function quietFor(ms: number): Promise<void> {
  const until = Date.now() + ms;
  await pollUntil(`${ms} ms to pass`, () => (Date.now() >= until ? true : undefined), ms + 1000);
}

test("a keep-alive of a lease another role's key is on: lost at once with PERMISSION_DENIED, refused once, the client's own lease kept", async () => {
  const writer = client(tokens.writer);
  const theirs = await writer.grantLease(30_000);
  await writer.set('app/held', 1, { lease: theirs.id });

  const other = client(tokens.other);
  const mine = await other.grantLease(1500);
  await other.set('other/mine', 1, { lease: mine.id });
  const mineKept = other.keepAlive(mine);
  const mineLost = lostSoFar(mineKept);
  const started = Date.now();
  const refused = await pollUntil('the refused lease to be lost', lostSoFar(other.keepAlive(theirs.id)), 5000);
  expect(Date.now() - started).toBeLessThan(3000);
  expect(refused).toMatchObject({
    code: status.PERMISSION_DENIED,
    reason: 'PERMISSION_DENIED',
    message: `permission denied: write on every key attached to lease ${theirs.id} is needed and this caller's role does not grant it on all of them`,
  });

  // Twice the lease's time to live: its own lease is refreshed on a new stream all along, and the refusal is not retried.
  await quietFor(3000);
  expect(mineLost()).toBeUndefined();
  expect(await other.leaseInfo(mine.id)).toMatchObject({ id: mine.id });
  expect(keepAliveDenials()).toEqual([
    expect.objectContaining({ identity: 'token:other', lease: theirs.id, key: 'app/held', code: 'PERMISSION_DENIED' }),
  ]);
  mineKept.close();
  expect(await writer.leaseInfo(theirs.id)).toMatchObject({ id: theirs.id });
});

test('a token removed from the auth file under an open keep-alive: every lease lost at once with UNAUTHENTICATED, no retries', async () => {
  const doomed = client(tokens.doomed);
  const leases = [await doomed.grantLease(30_000), await doomed.grantLease(30_000)];
  for (const [i, lease] of leases.entries()) await doomed.set(`app/doomed-${i}`, 1, { lease: lease.id });
  const handles = leases.map((lease) => doomed.keepAlive(lease));
  const lost = handles.map(lostSoFar);
  // Both refreshed once (the stream is open) before the token goes.
  await pollUntil('both leases refreshed', async () => {
    const infos = await Promise.all(leases.map((lease) => doomed.leaseInfo(lease.id)));
    return infos.every((info) => info !== undefined && info.remainingMs > 29_000) ? true : undefined;
  });
  const deniedBefore = keepAliveDenials().length;

  writeAuthFile(dir, { ...SPEC, tokens: { writer: 'writer', other: 'other' } });
  server.child.kill('SIGHUP');
  const started = Date.now();
  const errors = await pollUntil('every lease to be lost', () => {
    const all = lost.map((check) => check());
    return all.every((error) => error !== undefined) ? all : undefined;
  });
  expect(Date.now() - started).toBeLessThan(3000);
  for (const error of errors)
    expect(error).toMatchObject({
      code: status.UNAUTHENTICATED,
      reason: 'UNAUTHENTICATED',
      message: expect.stringMatching(/^token revoked/),
    });

  // No reopening with the dead token: only the end of the open stream is audited.
  await quietFor(2500);
  expect(keepAliveDenials().slice(deniedBefore)).toEqual([
    expect.objectContaining({ identity: 'token:doomed', code: 'UNAUTHENTICATED', msg: 'token revoked while its call was open' }),
  ]);
});

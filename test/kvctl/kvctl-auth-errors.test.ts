/** kvctl against a server that checks tokens: how refusals exit. */
import { rmSync } from 'node:fs';
import { type AuthFixture, writeAuthFile } from '../support/auth-fixture';
import { runKvctl } from '../support/kvctl-process';
import { startServer, type RunningServer } from '../support/server-process';
import { makeTempDir } from '../support/temp-dirs';

let server: RunningServer;
let dir: string;
let auth: AuthFixture;

beforeAll(async () => {
  dir = makeTempDir('kvctl-auth-');
  auth = writeAuthFile(dir, { roles: { reader: [{ prefix: '', permission: 'read' }] }, tokens: { good: 'reader' } });
  server = await startServer({ args: ['--auth-file', auth.file, '--auth-failures-per-minute', '2'] });
});

afterAll(async () => {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

// Before the address is rate-limited below (a good token then waits too).
test('a backup to stdout that the server refuses writes nothing there: exit 6, the refusal on stderr', async () => {
  const result = await runKvctl(['backup', '-'], { env: { KV_ENDPOINTS: server.address, KV_TOKEN: auth.tokens.good } });
  expect({ code: result.code, stdout: result.stdout }).toEqual({ code: 6, stdout: '' });
  expect(result.stderr).toMatch(/^kvctl: permission denied: admin on prefix "" [^\n]*\(PERMISSION_DENIED\)/);
});

test('too many unknown tokens: AUTH_RATE_LIMITED exits 6 (denied, for now), not 5 (rejected)', async () => {
  const guess = (): ReturnType<typeof runKvctl> => runKvctl(['get', 'k'], { env: { KV_ENDPOINTS: server.address, KV_TOKEN: 'wrong' } });
  for (let i = 0; i < 2; i++) expect((await guess()).code).toBe(6);
  const limited = await guess();
  expect({ code: limited.code, stdout: limited.stdout }).toEqual({ code: 6, stdout: '' });
  expect(limited.stderr).toMatch(/^kvctl: [^\n]*\(AUTH_RATE_LIMITED\)\n$/);
});

test('an empty KV_* variable is taken as unset, not as an empty flag', async () => {
  const empty = { KV_TOKEN: '', KV_TLS_CA: '', KV_CLIENT_TLS_CERT: '', KV_CLIENT_TLS_KEY: '', KV_OUTPUT: '', KV_TIMEOUT_MS: '' };
  // Without a token this server says UNAUTHENTICATED (exit 6): the call was made, no flag was blamed.
  const result = await runKvctl(['--endpoint', server.address, 'get', 'k'], { env: empty });
  expect({ code: result.code, stdout: result.stdout }).toEqual({ code: 6, stdout: '' });
  // And kvctl, taking KV_TOKEN as unset, says how to give one.
  expect(result.stderr).toMatch(
    /^kvctl: [^\n]*\(UNAUTHENTICATED\): give kvctl a token with --token-file or --token \(KV_TOKEN_FILE, KV_TOKEN\)\n$/,
  );
  const noEndpoints = await runKvctl(['health', '--timeout-ms', '500'], { env: { ...empty, KV_ENDPOINTS: '' } });
  expect(noEndpoints.stderr).not.toMatch(/--endpoint/);
  // The default endpoint was used (whether something serves there or not).
  expect(noEndpoints.stdout + noEndpoints.stderr).toMatch(/127\.0\.0\.1:50051/);
});

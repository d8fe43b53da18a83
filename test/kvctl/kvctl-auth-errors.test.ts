/** kvctl against a server that checks tokens: how refusals exit. */
import { rmSync } from 'node:fs';
import { writeAuthFile } from '../support/auth-fixture';
import { runKvctl } from '../support/kvctl-process';
import { startServer, type RunningServer } from '../support/server-process';
import { makeTempDir } from '../support/temp-dirs';

let server: RunningServer;
let dir: string;

beforeAll(async () => {
  dir = makeTempDir('kvctl-auth-');
  const auth = writeAuthFile(dir, { roles: { reader: [{ prefix: '', permission: 'read' }] }, tokens: { good: 'reader' } });
  server = await startServer({ args: ['--auth-file', auth.file, '--auth-failures-per-minute', '2'] });
});

afterAll(async () => {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('too many unknown tokens: AUTH_RATE_LIMITED exits 6 (denied, for now), not 5 (rejected)', async () => {
  const guess = (): ReturnType<typeof runKvctl> => runKvctl(['get', 'k'], { env: { KV_ENDPOINTS: server.address, KV_TOKEN: 'wrong' } });
  for (let i = 0; i < 2; i++) expect((await guess()).code).toBe(6);
  const limited = await guess();
  expect({ code: limited.code, stdout: limited.stdout }).toEqual({ code: 6, stdout: '' });
  expect(limited.stderr).toMatch(/^kvctl: [^\n]*\(AUTH_RATE_LIMITED\)\n$/);
});

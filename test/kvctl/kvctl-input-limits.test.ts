/** A value kvctl reads from @FILE or stdin is read up to the most a server takes, never without end (@/dev/zero). */
import { KvClient } from '@kv/client';
import { KVCTL_SHELL, runCommand, runKvctl } from '../support/kvctl-process';
import { startServer, type RunningServer } from '../support/server-process';

let server: RunningServer;

beforeAll(async () => {
  server = await startServer();
});

afterAll(async () => {
  await server.stop();
});

test.each([
  ['@FILE', () => runKvctl(['set', 'big', '@/dev/zero'], { env: { KV_ENDPOINTS: server.address }, timeoutMs: 20_000 }), '/dev/zero'],
  [
    'stdin',
    () => runCommand('sh', ['-c', `${KVCTL_SHELL} set big < /dev/zero`], { env: { KV_ENDPOINTS: server.address }, timeoutMs: 20_000 }),
    'stdin',
  ],
])('an endless value from %s: one line, exit 2, nothing stored', async (_from, run, source) => {
  const result = await run();
  expect({ code: result.code, stdout: result.stdout }).toEqual({ code: 2, stdout: '' });
  expect(result.stderr).toBe(`kvctl: ${source} is larger than 16 MiB, more than a server takes in one request; nothing was sent\n`);
  const kv = new KvClient(server.address);
  try {
    expect(await kv.get('big')).toBeUndefined();
  } finally {
    kv.close();
  }
});

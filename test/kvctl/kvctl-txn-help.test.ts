/** kvctl txn --help says how to write a key with spaces, and what it says works. */
import { KvClient } from '@kv/client';
import { runCommand, runKvctl, KVCTL_SHELL } from '../support/kvctl-process';
import { startServer, type RunningServer } from '../support/server-process';

let server: RunningServer;

beforeAll(async () => {
  server = await startServer();
});

afterAll(async () => {
  await server.stop();
});

test('the example in txn --help, pasted into a shell, sets and gets a key with a space', async () => {
  const help = await runKvctl(['txn', '--help']);
  expect(help.code).toBe(0);
  expect(help.stdout).toMatch(/a JSON string, in double\s+quotes, for a key with spaces/);
  const example = /^ {2}(kvctl txn .*)$/m.exec(help.stdout)?.[1];
  expect(example).toBeDefined();
  const result = await runCommand('sh', ['-c', (example as string).replace(/^kvctl/, KVCTL_SHELL)], {
    env: { KV_ENDPOINTS: server.address },
  });
  expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
  expect(JSON.parse(result.stdout).results[1]).toMatchObject({ type: 'get', key: 'a key', value: { n: 1 } });
  const kv = new KvClient(server.address);
  try {
    expect((await kv.get('a key'))?.value).toEqual({ n: 1 });
  } finally {
    kv.close();
  }
});

import { freePort } from '../support/free-port';
import { KvClient, KvError } from '@kv/client';
import { startServer, type RunningServer } from '../support/server-process';
import { makeTempDir } from '../support/temp-dirs';

/** A port that was free a moment ago: nothing listens there until the test starts a server on it. */
let server: RunningServer | undefined;
afterEach(async () => {
  await server?.stop();
  server = undefined;
});

test('reads retry on UNAVAILABLE until the server is up; writes fail at once', async () => {
  const port = await freePort();
  const kv = new KvClient(`127.0.0.1:${port}`, { retry: { attempts: 100, initialBackoffMs: 100 }, deadlineMs: 30_000 });

  const write = await kv.set('k', 1).then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(write).toBeInstanceOf(KvError);
  expect((write as KvError).reason).toBe('UNAVAILABLE');

  // The server takes about a second to start; the read keeps retrying meanwhile.
  const read = kv.get('k');
  server = await startServer({ args: ['--listen', `127.0.0.1:${port}`] });
  await expect(read).resolves.toBeUndefined();
  kv.close();
});

test('with retries disabled a read fails on the first UNAVAILABLE', async () => {
  const port = await freePort();
  const kv = new KvClient(`127.0.0.1:${port}`, { retry: { attempts: 1 } });
  await expect(kv.get('k')).rejects.toMatchObject({ reason: 'UNAVAILABLE' });
  kv.close();
});

test("a connection that fails says so in a person's words, not grpc-js's", async () => {
  const port = await freePort();
  const kv = new KvClient(`127.0.0.1:${port}`, { retry: { attempts: 1 } });
  const refused = await kv.get('k').then(
    () => undefined,
    (error: unknown) => error as KvError,
  );
  expect(refused?.message).toBe(`no connection: connect ECONNREFUSED 127.0.0.1:${port}`);
  // A second client to the same address shares the failed connection, whose error grpc-js no longer names ("Last error: null").
  const second = new KvClient(`127.0.0.1:${port}`, { retry: { attempts: 1 } });
  const shared = await second.set('k', 1).then(
    () => undefined,
    (error: unknown) => error as KvError,
  );
  expect([shared?.reason, shared?.message]).toEqual([
    'UNAVAILABLE',
    'no connection: the last attempt to connect to the server failed (it is retried in the background)',
  ]);
  second.close();
  kv.close();

  server = await startServer({ args: ['--http-listen', '127.0.0.1:0'] });
  const overHttp = new KvClient(server.httpAddress!, { retry: { attempts: 1 } });
  await expect(overHttp.get('k')).rejects.toMatchObject({
    reason: 'NOT_GRPC',
    message: expect.stringMatching(
      /^this is kv-server's HTTP port \(Connect, gRPC-Web and the web console\), not its gRPC port: send gRPC calls to its --listen address \(port \d+\)$/,
    ),
  });
  overHttp.close();
});

test('under the default options a read sent while the server restarts is answered once it is back, within its deadline', async () => {
  const dataDir = makeTempDir();
  server = await startServer({ dataDir });
  const address = server.address;
  const kv = new KvClient(address);
  try {
    await kv.set('k', 'before');
    await server.kill();
    const read = kv.get('k', { deadlineMs: 5000 });
    server = await startServer({ dataDir, args: ['--listen', address] });
    await expect(read).resolves.toMatchObject({ value: 'before' });
    // A write is not retried: sent while the server is down, it fails at once.
    await server.kill();
    await expect(kv.set('k', 'during')).rejects.toMatchObject({ reason: 'UNAVAILABLE' });
  } finally {
    kv.close();
  }
});

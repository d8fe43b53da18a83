import { freePort } from '../support/free-port';
import { KvClient, KvError } from '@kv/client';
import { startServer, type RunningServer } from '../support/server-process';

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
  kv.close();

  server = await startServer({ args: ['--http-listen', '127.0.0.1:0'] });
  const overHttp = new KvClient(server.httpAddress!, { retry: { attempts: 1 } });
  await expect(overHttp.get('k')).rejects.toMatchObject({
    message: expect.stringMatching(/^the server answered HTTP 415, not gRPC \(a kv-server's --http-listen port/),
  });
  overHttp.close();
});

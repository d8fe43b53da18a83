/**
 * A watch whose startAttempts or reconnectAttempts run out on a server that
 * says nothing (SIGSTOPped: it takes the connection, never answers) was
 * ended by the SDK's own idle timer, whose cancel grpc-js reports as
 * CANCELLED "Cancelled on client", as if the caller had cancelled it. It
 * must say UNAVAILABLE, and that nothing came from the server.
 */
import { KvClient, KvError, status, type KvWatch } from '@kv/client';
import { startServer, type RunningServer } from '../support/server-process';
import { pollUntil } from '../support/temp-dirs';

let server: RunningServer;
let kv: KvClient;

beforeAll(async () => {
  server = await startServer();
  kv = new KvClient(server.address, { deadlineMs: 3000 });
  await kv.set('warm-up', 1);
});
afterEach(() => {
  server.child.kill('SIGCONT');
});
afterAll(async () => {
  kv.close();
  await server.stop();
});

/** How the loop over `watch` ended: the error it threw (undefined: it returned), once it has. */
function ending(watch: KvWatch): () => { error: unknown } | undefined {
  let ended: { error: unknown } | undefined;
  void (async () => {
    for await (const _ of watch) {
      // only the ending is looked at
    }
  })().then(
    () => (ended = { error: undefined }),
    (error: unknown) => (ended = { error }),
  );
  return () => ended;
}

test('startAttempts used up on a stopped server: UNAVAILABLE, nothing came from it, not CANCELLED', async () => {
  server.child.kill('SIGSTOP');
  const ended = ending(kv.watch({ key: 'x', startAttempts: 2, idleTimeoutMs: 300 }));
  const { error } = await pollUntil('the watch to end', ended, 10_000);
  expect(error).toBeInstanceOf(KvError);
  expect(error).toMatchObject({
    code: status.UNAVAILABLE,
    reason: 'UNAVAILABLE',
    message: 'the server did not answer the watch: nothing came from it for 300 ms (startAttempts 2 used up)',
  });
});

test('reconnectAttempts used up after the server stopped: UNAVAILABLE, nothing came from it, not CANCELLED', async () => {
  const watch = kv.watch({ key: 'x', reconnectAttempts: 1, idleTimeoutMs: 300 });
  const ended = ending(watch);
  // Started: the server's first message (a watch from now gets one at once) has come.
  await pollUntil('the watch to start', () => (watch.revision > 0 ? true : undefined));
  server.child.kill('SIGSTOP');
  const { error } = await pollUntil('the watch to end', ended, 10_000);
  expect(error).toBeInstanceOf(KvError);
  expect(error).toMatchObject({
    code: status.UNAVAILABLE,
    reason: 'UNAVAILABLE',
    message: 'the watch could not resume: nothing came from the server for 300 ms (reconnectAttempts 1 used up)',
  });
});

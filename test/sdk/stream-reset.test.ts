/**
 * A call whose stream the server resets without a gRPC status (RST_STREAM,
 * no trailers), as happens when the server's process stops or is killed
 * mid-call: grpc-js calls it INTERNAL, but it is a transport failure, not
 * the server's answer. The SDK gives it as UNAVAILABLE (read again, or read
 * before writing again), and kvctl exits 4 (unavailable), not 8 (a server
 * error). A stand-in HTTP/2 server plays the dying server: it resets every
 * stream as soon as its request arrives.
 */
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { KvClient, KvError, status } from '@kv/client';
import { runKvctl } from '../support/kvctl-process';

let server: http2.Http2Server;
let address: string;

beforeAll(async () => {
  server = http2.createServer();
  server.on('stream', (stream) => stream.close(http2.constants.NGHTTP2_NO_ERROR));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

test('the SDK: UNAVAILABLE, saying the server ended the call without a status', async () => {
  const kv = new KvClient(address, { retry: { attempts: 1 }, deadlineMs: 5000 });
  try {
    for (const call of [() => kv.get('k'), () => kv.set('k', 1)]) {
      const error = await call().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(KvError);
      expect(error).toMatchObject({ code: status.UNAVAILABLE, reason: 'UNAVAILABLE' });
      expect((error as KvError).message).toMatch(/^the server ended the call without a gRPC status, .*\(Received RST_STREAM with code 0/);
    }
  } finally {
    kv.close();
  }
});

test('kvctl: exit 4 (unavailable), one line', async () => {
  const result = await runKvctl(['get', 'k', '--endpoint', address, '--timeout-ms', '3000']);
  expect({ code: result.code, stdout: result.stdout }).toEqual({ code: 4, stdout: '' });
  expect(result.stderr).toMatch(/^kvctl: 127\.0\.0\.1:\d+: the server ended the call without a gRPC status, [^\n]*\(UNAVAILABLE\)\n$/);
});

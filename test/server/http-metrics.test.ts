/**
 * Calls on the HTTP port in the server's call metrics, as the gRPC port
 * counts the same calls: by method and code, Watch streams while open, and
 * the calls refused before their handler runs (credentials, a body that
 * does not parse), which the HTTP port did not count.
 */
import { Client, credentials, Metadata } from '@grpc/grpc-js';
import { writeAuthFile } from '../support/auth-fixture';
import { startServer, type RunningServer } from '../support/server-process';
import { makeTempDir, pollUntil } from '../support/temp-dirs';

let server: RunningServer;
let token: string;

beforeAll(async () => {
  const auth = writeAuthFile(makeTempDir('kv-http-metrics-'), {
    roles: { admin: [{ prefix: '', permission: 'admin' }] },
    tokens: { ops: 'admin' },
  });
  token = auth.tokens.ops;
  server = await startServer({
    args: [
      '--http-listen',
      '127.0.0.1:0',
      '--metrics-listen',
      '127.0.0.1:0',
      '--auth-file',
      auth.file,
      '--auth-failures-per-minute',
      '1000',
    ],
  });
});

afterAll(async () => {
  expect(await server.stop()).toBe(0);
});

/** The samples of kv_grpc_server_handled_total and open_streams, by "method code" and "method". */
async function scrape(): Promise<{ handled: Map<string, number>; open: Map<string, number> }> {
  const text = await (await fetch(`http://${server.metricsAddress}/metrics`)).text();
  const handled = new Map<string, number>();
  const open = new Map<string, number>();
  for (const line of text.split('\n')) {
    const done = /^kv_grpc_server_handled_total\{method="(\w+)",code="(\w+)"\} (\d+)$/.exec(line);
    if (done) handled.set(`${done[1]} ${done[2]}`, Number(done[3]));
    const streams = /^kv_grpc_server_open_streams\{method="(\w+)"\} (\d+)$/.exec(line);
    if (streams) open.set(streams[1], Number(streams[2]));
  }
  return { handled, open };
}

function post(method: string, body: string | Buffer, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`http://${server.httpAddress}/kv.v1.KeyValueService/${method}`, { method: 'POST', headers, body });
}

const json = { 'content-type': 'application/json' };

test('calls refused before their handler are counted by method and code, as on the gRPC port', async () => {
  const before = (await scrape()).handled;
  const grew = (after: Map<string, number>, series: string): number => (after.get(series) ?? 0) - (before.get(series) ?? 0);

  expect((await post('Get', '{"key": "a"}', json)).status).toBe(401); // no token
  expect((await post('Get', '{"key": ', { ...json, authorization: `Bearer ${token}` })).status).toBe(400); // malformed JSON
  const cutShort = Buffer.from([0x0a, 0x05, 0x61]);
  expect((await post('Get', cutShort, { 'content-type': 'application/proto', authorization: `Bearer ${token}` })).status).toBe(400);
  // The same protobuf bytes over gRPC, for comparison.
  const client = new Client(server.address, credentials.createInsecure());
  const metadata = new Metadata();
  metadata.set('authorization', `Bearer ${token}`);
  await new Promise<void>((resolve) =>
    client.makeUnaryRequest(
      '/kv.v1.KeyValueService/Get',
      (b: Buffer) => b,
      (b: Buffer) => b,
      cutShort,
      metadata,
      () => resolve(),
    ),
  );
  client.close();
  // A Watch whose request does not parse: a stream that opened and ended.
  const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, 3]), Buffer.from('{"p')]);
  const watch = await post('Watch', frame, { 'content-type': 'application/connect+json', authorization: `Bearer ${token}` });
  expect(await watch.text()).toContain('invalid_argument');

  const after = await pollUntil('the refusals counted', async () => {
    const { handled } = await scrape();
    return grew(handled, 'Get INVALID_ARGUMENT') >= 3 ? handled : undefined;
  });
  expect(grew(after, 'Get UNAUTHENTICATED')).toBe(1);
  expect(grew(after, 'Get INVALID_ARGUMENT')).toBe(3); // JSON and protobuf over HTTP, protobuf over gRPC
  expect(grew(after, 'Watch INVALID_ARGUMENT')).toBe(1);
  expect(grew(after, 'Get INTERNAL')).toBe(0);
});

test('a Watch over HTTP counts as an open stream while it runs, and as handled when it ends', async () => {
  const abort = new AbortController();
  const request = Buffer.from('{"prefix": "w/"}');
  const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, request.length]), request]);
  const before = (await scrape()).handled.get('Watch CANCELLED') ?? 0;
  const watch = await fetch(`http://${server.httpAddress}/kv.v1.KeyValueService/Watch`, {
    method: 'POST',
    headers: { 'content-type': 'application/connect+json', authorization: `Bearer ${token}` },
    body: frame,
    signal: abort.signal,
  });
  expect(watch.status).toBe(200);
  await pollUntil('the watch open', async () => ((await scrape()).open.get('Watch') === 1 ? true : undefined));
  abort.abort();
  await pollUntil('the watch closed and counted', async () => {
    const { open, handled } = await scrape();
    return open.get('Watch') === 0 && (handled.get('Watch CANCELLED') ?? 0) === before + 1 ? true : undefined;
  });
});

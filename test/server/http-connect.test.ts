/**
 * kv.v1 on the HTTP port, through a real server: plain JSON over HTTP/1.1
 * as curl sends it, Connect clients (JSON and protobuf, HTTP/1.1 and
 * HTTP/2) and gRPC-Web, with the same errors, reasons and values as gRPC.
 */
import http from 'node:http';
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { Code, ConnectError, createClient, type Client, type Transport } from '@connectrpc/connect';
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from '@connectrpc/connect-node';
import { createAsyncIterable } from '@connectrpc/connect/protocol';
import { create, type JsonValue, toJson } from '@bufbuild/protobuf';
import { ValueSchema } from '@bufbuild/protobuf/wkt';
import { KeyValueServiceClient, SetRequest } from '../../src/gen/kv/v1/kv';
import { EventType, KeyValueService } from '../../src/gen/kv/v1/kv_pb';
import { startServer, type RunningServer } from '../support/server-process';

let server: RunningServer;
let base: string;

beforeAll(async () => {
  server = await startServer({ args: ['--http-listen', '127.0.0.1:0', '--max-key-bytes', '64', '--max-value-bytes', '1024'] });
  base = `http://${server.httpAddress}`;
});

afterAll(async () => {
  if (server.child.exitCode === null) expect(await server.stop()).toBe(0);
});

beforeEach(async () => {
  await post('Clear', { prefix: '' });
});

/** The JSON fields these tests read. */
interface Answer {
  revision?: string;
  entry?: { value: unknown; lease?: string };
  code?: string;
  message?: string;
  [field: string]: unknown;
}

/** One call as curl makes it: POST, JSON in, JSON out. */
async function post(
  method: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; json: Answer }> {
  const response = await fetch(`${base}/kv.v1.KeyValueService/${method}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: response.status, headers: response.headers, json: (await response.json()) as Answer };
}

function grpcError(
  call: (client: KeyValueServiceClient, done: (error: ServiceError | null) => void) => void,
): Promise<ServiceError | null> {
  const client = new KeyValueServiceClient(server.address, credentials.createInsecure());
  return new Promise<ServiceError | null>((resolve) => call(client, resolve)).finally(() => client.close());
}

describe('JSON over HTTP/1.1, as curl sends it', () => {
  test('Set, Get, ListKeys, Delete and Clear answer in the protobuf JSON mapping', async () => {
    const set = await post('Set', { key: 'user/1', value: { name: 'Ada', langs: ['en', 'fr'], admin: true } });
    expect(set).toMatchObject({ status: 200, json: { revision: expect.stringMatching(/^\d+$/) } });
    const revision = set.json.revision!;
    expect((await post('Get', { key: 'user/1' })).json).toEqual({
      entry: {
        key: 'user/1',
        value: { name: 'Ada', langs: ['en', 'fr'], admin: true },
        createRevision: revision,
        modRevision: revision,
        version: '1',
      },
    });
    const second = await post('Set', { key: 'user/2', value: null });
    expect((await post('Get', { key: 'user/2' })).json.entry?.value).toBeNull();
    expect((await post('ListKeys', { prefix: 'user/', pageSize: 1 })).json).toEqual({
      keys: ['user/1'],
      nextPageToken: expect.any(String),
      revision: second.json.revision,
    });
    expect((await post('Delete', { key: 'user/2' })).json).toEqual({ deleted: true, revision: expect.any(String) });
    const cleared = await post('Clear', { prefix: 'user/' });
    expect(cleared.json).toEqual({ deletedCount: '1', revision: expect.any(String) });
    expect((await post('ListKeys', {})).json).toEqual({ revision: cleared.json.revision });
  });

  test('an object field named "__proto__" is kept, over JSON and when read back over gRPC', async () => {
    const value = JSON.parse('{"__proto__": {"polluted": true}, "plain": 1}') as object;
    expect((await post('Set', { key: 'proto', value })).status).toBe(200);
    const got = await post('Get', { key: 'proto' });
    expect(Object.keys(got.json.entry?.value as object)).toEqual(['__proto__', 'plain']);
    expect(JSON.stringify(got.json.entry?.value)).toBe('{"__proto__":{"polluted":true},"plain":1}');
    // Read back through real gRPC with a decoder that keeps "__proto__" (protobuf-es; ts-proto's does not).
    const overGrpc = createClient(KeyValueService, createGrpcTransport({ baseUrl: `http://${server.address}` }));
    const { entry } = await overGrpc.get({ key: 'proto' });
    expect(JSON.stringify(toJson(ValueSchema, entry!.value!))).toBe('{"__proto__":{"polluted":true},"plain":1}');
  });

  test('a revision mismatch is 409 aborted, with the gRPC message, kv-reason and kv-current-revision, in headers and in the JSON', async () => {
    const revision = (await post('Set', { key: 'a', value: 1 })).json.revision!;
    const failed = await post('Set', { key: 'a', value: 2, expectedRevision: '0' });
    const overGrpc = await grpcError((client, done) =>
      client.set(SetRequest.fromPartial({ key: 'a', value: 2, expectedRevision: 0 }), new Metadata(), done),
    );
    expect(failed.status).toBe(409);
    expect(failed.json).toEqual({
      code: 'aborted',
      message: overGrpc?.details,
      details: [
        {
          type: 'google.rpc.ErrorInfo',
          value: expect.any(String),
          debug: { reason: 'REVISION_MISMATCH', domain: 'kv.v1', metadata: { 'current-revision': revision } },
        },
      ],
    });
    expect(failed.headers.get('kv-reason')).toBe('REVISION_MISMATCH');
    expect(failed.headers.get('kv-current-revision')).toBe(revision);
    expect(overGrpc?.metadata.get('kv-reason')).toEqual(['REVISION_MISMATCH']);
  });

  test('NOT_FOUND, INVALID_KEY and TOO_LARGE come with the same messages and reasons as over gRPC', async () => {
    const cases: [string, object, number, string, string][] = [
      ['Get', { key: 'missing' }, 404, 'not_found', 'NOT_FOUND'],
      ['Get', { key: '' }, 400, 'invalid_argument', 'INVALID_KEY'],
      ['Set', { key: 'big', value: 'x'.repeat(2000) }, 400, 'invalid_argument', 'TOO_LARGE'],
      ['Set', { key: 'novalue' }, 400, 'invalid_argument', 'INVALID_VALUE'],
    ];
    for (const [method, body, status, code, reason] of cases) {
      const answer = await post(method, body);
      const overGrpc = await grpcError((client, done) =>
        method === 'Get' ? client.get(body as { key: string }, done) : client.set(SetRequest.fromPartial(body), new Metadata(), done),
      );
      expect([answer.status, answer.json.code, answer.headers.get('kv-reason')]).toEqual([status, code, reason]);
      expect(answer.json.message).toBe(overGrpc?.details);
    }
  });

  test('what a request cannot carry is invalid_argument and nothing is stored: unpaired surrogates, bad UTF-8, unknown or duplicate fields, deep nesting', async () => {
    const deep = '['.repeat(60) + ']'.repeat(60);
    const bodies = [
      '{"key": "s", "value": "\\udc00 alone"}',
      '{"key": "s", "value": {"\\ud800": 1}}',
      Buffer.from([...Buffer.from('{"key": "s", "value": "'), 0xff, 0xfe, ...Buffer.from('"}')]),
      '{"key": "s", "value": 1, "expected_revison": 3}',
      '{"key": "s", "value": {"a": 1, "a": 2}}',
      `{"key": "s", "value": ${deep}}`,
    ];
    for (const body of bodies) {
      const response = await fetch(`${base}/kv.v1.KeyValueService/Set`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
      const json = (await response.json()) as { code: string; message: string };
      expect([response.status, json.code]).toEqual([400, 'invalid_argument']);
      expect(json.message).not.toBe('');
    }
    expect((await post('Get', { key: 's' })).status).toBe(404);
  });

  test('a key or prefix with a lone surrogate is INVALID_KEY, as kv.proto says, on every call that takes one', async () => {
    const calls: [string, string][] = [
      ['Set', '{"key": "a\\ud800", "value": 1}'],
      ['Get', '{"key": "\\udc00"}'],
      ['Delete', '{"key": "x\\ud800y"}'],
      ['ListKeys', '{"prefix": "p\\ud800"}'],
      ['Clear', '{"prefix": "\\ud800"}'],
      ['Txn', '{"success": [{"set": {"key": "t\\ud800", "value": 1}}]}'],
      ['Txn', '{"compare": [{"key": "\\ud800", "version": "0"}]}'],
    ];
    for (const [method, body] of calls) {
      const answer = await post(method, body);
      expect([method, answer.status, answer.headers.get('kv-reason')]).toEqual([method, 400, 'INVALID_KEY']);
      expect(answer.json.message).toMatch(/^(key|prefix) is not valid Unicode text \(it has a lone surrogate\)$/);
    }
    // No key was written (ListKeys has no keys to give, only the revision it was read at).
    expect((await post('ListKeys', {})).json).toEqual({ revision: expect.stringMatching(/^\d+$/) });
  });

  test('a value nested too deeply gets the gRPC port’s message and INVALID_VALUE, below connect-es’s own JSON depth limit and past it', async () => {
    for (const depth of [40, 100, 150]) {
      let value: unknown = 1;
      for (let i = 0; i < depth; i++) value = { a: value };
      const answer = await post('Set', { key: 'deep', value });
      const overGrpc = await grpcError((client, done) => client.set(SetRequest.fromPartial({ key: 'deep', value }), new Metadata(), done));
      expect([depth, answer.status, answer.json.message, answer.headers.get('kv-reason')]).toEqual([
        depth,
        400,
        overGrpc?.details,
        'INVALID_VALUE',
      ]);
    }
  });

  test('a number JSON.parse would round is refused, naming it, and numbers a double keeps are stored as sent', async () => {
    const refused: [string, string][] = [
      ['{"key": "r", "value": 12345678901234567890}', 'has the number 12345678901234567890, which would be stored as 12345678901234567000'],
      ['{"key": "r", "value": {"n": [1, -1e-400]}}', 'has the number -1e-400, which would be stored as 0'],
      ['{"key": "r", "value": 1e400}', 'has the number 1e400, larger than'],
      ['{"key": "r", "value": 0.1000000000000000055511151231257827}', 'has the number 0.1000000000000000055511151231257827'],
      [
        '{"key": "r", "value": 1, "expected_revision": 9007199254740993}',
        'has the number 9007199254740993, which would be stored as 9007199254740992',
      ],
    ];
    for (const [body, message] of refused) {
      const answer = await post('Set', body);
      expect([answer.status, answer.json.code]).toEqual([400, 'invalid_argument']);
      expect(answer.json.message).toContain(message);
      expect(answer.json.message).toContain('in a value, send such a number as a string');
    }
    // What the message says of an int64 field: the string form is refused too, past 2^53 - 1.
    const asString = await post('Set', '{"key": "r", "value": 1, "expected_revision": "9007199254740993"}');
    expect([asString.status, asString.json.message]).toEqual([400, expect.stringContaining('outside ±(2^53 - 1)')]);
    expect((await post('Get', { key: 'r' })).status).toBe(404);

    const kept =
      '{"a\\"12345678901234567890": "12345678901234567890", "n": [0.1, 0, 1e21, 9007199254740991, 5e-324, 1.5E+3, 100000000000000000000]}';
    expect((await post('Set', `{"key": "r", "value": ${kept}}`)).status).toBe(200);
    expect((await post('Get', { key: 'r' })).json.entry?.value).toEqual(JSON.parse(kept));
  });

  test('the later RPCs too: Update (a JSON merge patch), Set with a TTL, LeaseInfo, and a value\'s "__proto__" through the patch', async () => {
    await post('Set', { key: 'cfg', value: { db: { host: 'a', port: 1 }, tags: ['x'] } });
    const patch = JSON.parse('{"db": {"port": 2, "host": null}, "__proto__": {"kept": true}}') as object;
    expect((await post('Update', { key: 'cfg', patch })).status).toBe(200);
    expect(JSON.stringify((await post('Get', { key: 'cfg' })).json.entry?.value)).toBe(
      '{"db":{"port":2},"tags":["x"],"__proto__":{"kept":true}}',
    );

    expect((await post('Set', { key: 'session', value: 'on', ttlMs: '60000' })).status).toBe(200);
    const lease = (await post('Get', { key: 'session' })).json.entry!;
    expect(lease.lease).toMatch(/^[1-9]\d*$/);
    const info = await post('LeaseInfo', { id: lease.lease, keys: true });
    expect(info.json).toMatchObject({ id: lease.lease, grantedTtlMs: '60000', keys: ['session'] });
  });

  test('KeepAlive, a bidirectional stream, works over HTTP/2 with a Connect client; a bad id is answered ttl 0 and ends nothing', async () => {
    const kv = createClient(KeyValueService, createConnectTransport({ baseUrl: base, httpVersion: '2' }));
    const { id } = await kv.grantLease({ ttlMs: 30_000n });
    // The second ping names a lease that does not exist, the next two ids no lease can have: each answered
    // with ttl 0, and the stream stays open for the others.
    const pings = [{ id }, { id: id + 1000n }, { id: 0n }, { id: -5n }, { id }];
    const answers: [bigint, bigint][] = [];
    for await (const answer of kv.keepAlive(createAsyncIterable(pings))) answers.push([answer.id, answer.ttlMs]);
    expect(answers).toEqual([
      [id, 30_000n],
      [id + 1000n, 0n],
      [0n, 0n],
      [-5n, 0n],
      [id, 30_000n],
    ]);
  });

  test('on a loopback address, a request addressed to another name (DNS rebinding) is refused with 421', async () => {
    const statusFor = (host: string): Promise<number> =>
      new Promise((resolve, reject) => {
        const [hostname, port] = server.httpAddress!.split(':');
        const request = http.request({ hostname, port, path: '/', headers: { host } }, (response) => {
          response.resume();
          resolve(response.statusCode ?? 0);
        });
        request.on('error', reject);
        request.end();
      });
    expect(await statusFor('attacker.example:80')).toBe(421);
    expect(await statusFor('127.0.0.1.attacker.example')).toBe(421);
    for (const host of ['localhost:8080', server.httpAddress!, '[::1]:8080']) expect(await statusFor(host)).not.toBe(421);
  });

  test('the console is served at / with a content security policy, and other paths are not RPCs', async () => {
    const page = await fetch(`${base}/`);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    if (page.status === 200) expect(await page.text()).toContain('<div id="app">');
    else expect(await page.text()).toContain('npm run build');
    // The console keeps what it shows in the fragment, so no other path is its page.
    for (const path of ['/favicon.ico', '/nope', '/user/1', '/assets/missing.js']) {
      const other = await fetch(`${base}${path}`);
      expect([path, other.status, await other.text()]).toEqual([
        path,
        404,
        page.status === 200 ? 'not found\n' : expect.stringContaining('npm run build'),
      ]);
    }
    expect(
      (await fetch(`${base}/kv.v1.KeyValueService/Nope`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }))
        .status,
    ).toBe(404);
  });
});

describe('Connect and gRPC-Web clients', () => {
  const transports: [string, () => Transport][] = [
    ['Connect JSON over HTTP/1.1', () => createConnectTransport({ baseUrl: base, httpVersion: '1.1', useBinaryFormat: false })],
    ['Connect protobuf over HTTP/2 (h2c)', () => createConnectTransport({ baseUrl: base, httpVersion: '2', useBinaryFormat: true })],
    ['gRPC-Web over HTTP/1.1', () => createGrpcWebTransport({ baseUrl: base, httpVersion: '1.1' })],
  ];

  test.each(transports)('%s: Set, Get, a conflict with its reason, and Watch', async (_name, transport) => {
    const kv: Client<typeof KeyValueService> = createClient(KeyValueService, transport());
    const value = create(ValueSchema, { kind: { case: 'stringValue', value: 'hello' } });
    const { revision } = await kv.set({ key: 'w/1', value });
    expect((await kv.get({ key: 'w/1' })).entry).toMatchObject({ key: 'w/1', modRevision: revision, version: 1n });

    const conflict = await kv.set({ key: 'w/1', value, expectedRevision: 0n }).then(
      () => undefined,
      (error: unknown) => ConnectError.from(error),
    );
    expect(conflict?.code).toBe(Code.Aborted);
    expect(conflict?.metadata.get('kv-reason')).toBe('REVISION_MISMATCH');
    expect(conflict?.metadata.get('kv-current-revision')).toBe(String(revision));

    const abort = new AbortController();
    const stream = kv.watch(
      { target: { case: 'prefix', value: 'w/' }, startRevision: revision, prevEntry: true },
      { signal: abort.signal },
    );
    const events: [EventType, string, JsonValue | undefined][] = [];
    const writes = (async () => {
      await kv.set({ key: 'w/2', value: create(ValueSchema, { kind: { case: 'numberValue', value: 2 } }) });
      await kv.delete({ key: 'w/1' });
    })();
    for await (const message of stream) {
      for (const event of message.events) events.push([event.type, event.entry?.key ?? '', event.entry?.value?.kind.value as JsonValue]);
      if (events.length >= 3) break;
    }
    await writes;
    abort.abort();
    expect(events).toEqual([
      [EventType.PUT, 'w/1', 'hello'],
      [EventType.PUT, 'w/2', 2],
      [EventType.DELETE, 'w/1', undefined],
    ]);
  });

  test('a Watch stream ends with UNAVAILABLE when the server shuts down, and the server exits 0', async () => {
    const kv = createClient(KeyValueService, createConnectTransport({ baseUrl: base, httpVersion: '1.1' }));
    const revision = BigInt((await post('Set', { key: 'ready', value: true })).json.revision!);
    const messages = kv.watch({ target: { case: 'key', value: 'ready' }, startRevision: revision })[Symbol.asyncIterator]();
    // The watch is open once it has sent the write it starts at.
    expect((await messages.next()).value?.events[0]?.entry?.key).toBe('ready');
    const stopped = server.stop();
    const ended = await messages.next().then(
      () => 'ended without an error',
      (error: unknown) => ConnectError.from(error).code,
    );
    expect(ended).toBe(Code.Unavailable);
    expect(await stopped).toBe(0);
  });
});

import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { Client, credentials, status, type ServiceError } from '@grpc/grpc-js';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { KvClient, type JsonValue } from '@kv/client';
import { DeleteRequest, SetRequest } from '../../src/gen/kv/v1/kv';
import { startServer, type RunningServer } from '../support/server-process';

let server: RunningServer;
let kv: KvClient;

beforeAll(async () => {
  server = await startServer();
  kv = new KvClient(server.address, { retry: { attempts: 1 } });
});

afterAll(async () => {
  kv.close();
  expect(await server.stop()).toBe(0);
});

/** Writes bytes to the port and resolves with whatever came back before the server closed or 2 s passed. */
function sendRaw(payload: Buffer | string): Promise<string> {
  const [host, port] = [server.address.slice(0, server.address.lastIndexOf(':')), Number(server.address.split(':').pop())];
  return new Promise((resolve) => {
    const socket = net.connect({ host, port }, () => socket.write(payload));
    let received = '';
    const done = (): void => {
      socket.destroy();
      resolve(received);
    };
    socket.on('data', (chunk) => (received += chunk.toString('latin1')));
    socket.on('close', done);
    socket.on('error', done);
    socket.setTimeout(2000, done);
  });
}

test('garbage bytes on the port do not take the server down', async () => {
  await Promise.all([sendRaw(randomBytes(4096)), sendRaw(randomBytes(64)), sendRaw('\u0000'.repeat(100))]);
  expect(await kv.set('still', 'serving')).toBeGreaterThan(0);
  expect(server.child.exitCode).toBeNull();
});

test('an HTTP/1.1 request is refused and the server keeps serving', async () => {
  await sendRaw('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
  await sendRaw('POST /kv.v1.KeyValueService/Get HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n\r\nabc');
  expect((await kv.get('still'))?.value).toBe('serving');
});

test('a 10 MB value is INVALID_ARGUMENT naming the limit and the size, without disturbing other clients', async () => {
  const other = new KvClient(server.address, { retry: { attempts: 1 } });
  const huge = kv.set('huge', 'x'.repeat(10 * 1024 * 1024));
  const meanwhile = other.set('small', 1);
  await expect(huge).rejects.toMatchObject({
    code: status.INVALID_ARGUMENT,
    reason: 'TOO_LARGE',
    message: expect.stringMatching(/10485762 bytes JSON-encoded; the limit is 1048576/),
  });
  expect(await meanwhile).toBeGreaterThan(0);
  expect((await other.get('small'))?.value).toBe(1);
  other.close();
});

test('a value just under the limit that is several times larger as protobuf round-trips', async () => {
  const zeros = new Array<number>(500_000).fill(0); // 1,000,001 bytes as JSON, about 5.5 MB as a protobuf Value
  await kv.set('zeros', zeros);
  expect((await kv.get('zeros'))?.value).toEqual(zeros);
});

/** Sends hand-made request bytes to a method and returns the status it answers with. */
function rawCall(method: string, request: Uint8Array): Promise<ServiceError | null> {
  const client = new Client(server.address, credentials.createInsecure());
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      `/kv.v1.KeyValueService/${method}`,
      (bytes: Buffer) => bytes,
      (bytes: Buffer) => bytes,
      Buffer.from(request),
      (error) => {
        client.close();
        resolve(error);
      },
    );
  });
}

describe('requests that do not decode are INVALID_ARGUMENT, never INTERNAL', () => {
  test('a key that is not UTF-8 is refused, not turned into U+FFFD', async () => {
    const key = new BinaryWriter().uint32(10).bytes(Uint8Array.of(0x61, 0xff)).finish(); // field 1, bytes "a\xff"
    const error = await rawCall('Get', key);
    expect(error?.code).toBe(status.INVALID_ARGUMENT);
    expect(error?.details).toMatch(/not valid UTF-8/);
    expect(
      await rawCall('Set', SetRequest.encode({ key: 'ok', value: 1, expectedRevision: undefined, lease: 0, ttlMs: 0 }).finish()),
    ).toBeNull();
  });

  test('an integer beyond 2^53 is refused, naming its field', async () => {
    const cases: Array<[string, Uint8Array, string]> = [
      // Delete{ key=1, expected_revision=2 }
      [
        'Delete',
        new BinaryWriter().uint32(10).string('k').uint32(16).int64('9007199254740993').finish(),
        'expected_revision 9007199254740993',
      ],
      // Watch{ key=1, start_revision=3 }: refused before the stream starts
      [
        'Watch',
        new BinaryWriter().uint32(10).string('k').uint32(24).int64('18014398509481984').finish(),
        'start_revision 18014398509481984',
      ],
      // GrantLease{ ttl_ms=1 }, below -(2^53 - 1)
      ['GrantLease', new BinaryWriter().uint32(8).int64('-9007199254740993').finish(), 'ttl_ms -9007199254740993'],
      // Delete again, after an unknown field 9 whose varint is longer than an int64's (the decoder skips it)
      [
        'Delete',
        Buffer.from('0a016b' + '48' + '80'.repeat(10) + '00' + '10' + '8180808080808010', 'hex'),
        'expected_revision 9007199254740993',
      ],
      // LeaseInfo{ id=1, keys=2 }: the field after it does not hide it
      ['LeaseInfo', new BinaryWriter().uint32(8).int64('9223372036854775807').uint32(16).bool(true).finish(), 'id 9223372036854775807'],
    ];
    for (const [method, request, named] of cases) {
      const error = await rawCall(method, request);
      expect([method, error?.code]).toEqual([method, status.INVALID_ARGUMENT]);
      expect(error?.details).toBe(`request could not be decoded: ${named} is outside ±(2^53 - 1)`);
    }
  });

  test('JSON nested deeper than protobuf decoding allows is refused', async () => {
    let deep: JsonValue = 'bottom';
    for (let i = 0; i < 40; i++) deep = { d: deep };
    // Sent as it is: the SDK refuses such a value itself, before encoding it.
    const error = await rawCall(
      'Set',
      SetRequest.encode({ key: 'deep', value: deep, expectedRevision: undefined, lease: 0, ttlMs: 0 }).finish(),
    );
    expect(error?.code).toBe(status.INVALID_ARGUMENT);
    expect(error?.details).toMatch(/^request could not be decoded: value is nested too deeply/);
    let fine: JsonValue = 'bottom';
    for (let i = 0; i < 20; i++) fine = { d: fine };
    await kv.set('nested', fine);
    expect((await kv.get('nested'))?.value).toEqual(fine);
  });

  test('a negative expected_revision is INVALID_ARGUMENT, not a mismatch', async () => {
    // Sent raw: the SDK refuses a negative revision itself, before sending.
    const set = await rawCall('Set', SetRequest.encode({ key: 'k', value: 1, expectedRevision: -1, lease: 0, ttlMs: 0 }).finish());
    expect(set).toMatchObject({ code: status.INVALID_ARGUMENT, details: expect.stringMatching(/expected_revision must not be negative/) });
    const del = await rawCall('Delete', DeleteRequest.encode({ key: 'k', expectedRevision: -5 }).finish());
    expect(del).toMatchObject({ code: status.INVALID_ARGUMENT, details: expect.stringMatching(/expected_revision must not be negative/) });
  });
});

/**
 * Without TLS credentials, KvClient talks plaintext only to a loopback
 * address, as kvctl and kv-server do: `new KvClient('somehost:1234',
 * { token })` used to send the token in the clear across the network.
 * Anywhere else needs TLS credentials or an explicit `insecure: true`.
 */
import { networkInterfaces } from 'node:os';
import { Metadata, Server, ServerCredentials, status, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import { credentials, isLoopbackAddress, KvClient, KvError } from '@kv/client';
import { KeyValueServiceService } from '../../src/gen/kv/v1/kv';

/** The error `new KvClient(address, options)` throws, or undefined if it makes a client. */
function refusal(address: string | string[], options: ConstructorParameters<typeof KvClient>[1] = {}): KvError | undefined {
  try {
    new KvClient(address, options).close();
    return undefined;
  } catch (error) {
    if (error instanceof KvError) return error;
    throw error;
  }
}

const NOT_LOOPBACK = [
  '192.0.2.1:50051',
  'kv.example.com:443',
  'dns:///kv.example.com:443',
  '0.0.0.0:50051',
  '[fd00::2]:50051',
  '[::]:50051',
  '[::ffff:10.0.0.1]:50051',
  '127.999.0.1:50051', // not an IPv4 address: a name, looked up in DNS
  '127.0.0.1.example.com:50051',
  'localhost.example.com:50051',
  'ipv4:127.0.0.1:50051,192.0.2.1:50051',
  'http://127.0.0.1:50051',
];
const LOOPBACK = [
  '127.0.0.1:50051',
  '127.1.2.3:50051',
  'localhost:50051',
  'LOCALHOST:50051',
  '[::1]:50051',
  '[::ffff:127.0.0.1]:50051',
  'dns:///localhost:50051',
  'ipv4:127.0.0.1:50051,127.0.0.2:50051',
  'ipv6:[::1]:50051',
  'unix:/tmp/kv.sock',
];

test('plaintext to an address that is not loopback is refused when the client is made, naming it and what to give instead', () => {
  for (const address of NOT_LOOPBACK) {
    expect(isLoopbackAddress(address)).toBe(false);
    const error = refusal(address, { token: 's3cret' });
    expect({ address, code: error?.code, reason: error?.reason, message: error?.message }).toEqual({
      address,
      code: status.INVALID_ARGUMENT,
      reason: 'INVALID_ARGUMENT',
      message:
        `${address} is not a loopback address: give TLS credentials (credentials: credentials.createSsl(rootCert)), ` +
        'or insecure: true to send in plaintext, the token included',
    });
    // Without a token too: keys and values are no less worth keeping off a network in the clear (kvctl's rule).
    expect(refusal(address)?.message).toBe(
      `${address} is not a loopback address: give TLS credentials (credentials: credentials.createSsl(rootCert)), or insecure: true to send in plaintext`,
    );
  }
  // One such address among several frontends is enough.
  expect(refusal(['127.0.0.1:50051', '192.0.2.1:50051'])?.message).toMatch(/^192\.0\.2\.1:50051 is not a loopback address/);
  // Plaintext credentials given explicitly are still plaintext.
  expect(refusal('192.0.2.1:50051', { credentials: credentials.createInsecure() })?.message).toMatch(/is not a loopback address/);
});

test('loopback addresses, TLS credentials and insecure: true are accepted', () => {
  for (const address of LOOPBACK) {
    expect(isLoopbackAddress(address)).toBe(true);
    expect(refusal(address, { token: 's3cret' })).toBeUndefined();
  }
  expect(refusal(NOT_LOOPBACK, { credentials: credentials.createSsl(), token: 's3cret' })).toBeUndefined();
  expect(refusal(NOT_LOOPBACK.slice(0, 4), { insecure: true, token: 's3cret' })).toBeUndefined();
});

/** This machine's first IPv4 address that is not loopback, if it has one. */
const outsideAddress = Object.values(networkInterfaces())
  .flat()
  .find((i) => i !== undefined && i.family === 'IPv4' && !i.internal)?.address;

(outsideAddress === undefined ? test.skip : test)(
  'a token reaches a server on a non-loopback address in plaintext only with insecure: true',
  async () => {
    // A stand-in server that records the authorization header of each call it gets, on this machine's outside address.
    const seen: string[] = [];
    const server = new Server();
    server.addService(KeyValueServiceService, {
      get: (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
        seen.push(String(call.metadata.get('authorization')[0] ?? ''));
        callback({ code: status.NOT_FOUND, details: 'no such key', metadata: new Metadata() });
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`${outsideAddress}:0`, ServerCredentials.createInsecure(), (error, bound) =>
        error ? reject(error) : resolve(bound),
      ),
    );
    try {
      const address = `${outsideAddress}:${port}`;
      expect(() => new KvClient(address, { token: 's3cret' })).toThrow(/is not a loopback address/);
      expect(seen).toEqual([]);
      const knowingly = new KvClient(address, { token: 's3cret', insecure: true, deadlineMs: 5000 });
      try {
        await expect(knowingly.get('k')).resolves.toBeUndefined();
      } finally {
        knowingly.close();
      }
      expect(seen).toEqual(['Bearer s3cret']);
    } finally {
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    }
  },
);

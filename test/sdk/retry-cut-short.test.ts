/**
 * A read the SDK tries again after UNAVAILABLE, whose last try the call's
 * deadline cuts short: the caller is told why the call failed (the server's
 * UNAVAILABLE, in its words) and how long it kept trying, not "deadline
 * exceeded after 0.3 s" (what was left of the deadline for the last try).
 * kv over etcd without a quorum answers a read so, after its own timeout.
 * The stand-in server below answers every Get that way, more slowly than
 * the deadline allows three tries.
 */
import { Metadata, Server, ServerCredentials, status as grpcStatus, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import { KvClient, KvError, status } from '@kv/client';
import { KeyValueServiceService } from '../../src/gen/kv/v1/kv';

const SERVER_WORDS = 'etcd did not answer the read (no leader)';
const ANSWER_AFTER_MS = 700;

let server: Server;
let address: string;
let gets = 0;
let sets = 0;

beforeAll(async () => {
  server = new Server();
  server.addService(KeyValueServiceService, {
    get: (_call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
      gets++;
      setTimeout(() => callback({ code: grpcStatus.UNAVAILABLE, details: SERVER_WORDS, metadata: new Metadata() }), ANSWER_AFTER_MS);
    },
    // The first Set is refused as not sent on (NOT_SENT: nothing applied); the second is taken, and answered too late.
    set: (_call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
      if (sets++ === 0) {
        const metadata = new Metadata();
        metadata.set('kv-reason', 'NOT_SENT');
        callback({ code: grpcStatus.UNAVAILABLE, details: 'nothing was applied: try again', metadata });
      } else setTimeout(() => callback(null, { revision: 7 }), 3000);
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  address = `127.0.0.1:${port}`;
});
afterAll(() => server.forceShutdown());

test('a read retried after UNAVAILABLE until its deadline fails with that UNAVAILABLE and the time it kept trying, not a leftover deadline', async () => {
  const kv = new KvClient(address, { deadlineMs: 2000 });
  try {
    const began = Date.now();
    const error = await kv.get('k').then(
      () => undefined,
      (e: unknown) => e,
    );
    const tookMs = Date.now() - began;
    expect(error).toBeInstanceOf(KvError);
    expect(error).toMatchObject({
      code: status.UNAVAILABLE,
      reason: 'UNAVAILABLE',
      message: expect.stringMatching(
        /^etcd did not answer the read \(no leader\) \(tried again until the call's deadline passed, [12]\.\d s after it began\)$/,
      ),
    });
    // At least one answer came before the try the deadline cut short (two, unless the machine is slow).
    expect(gets).toBeGreaterThanOrEqual(2);
    expect(tookMs).toBeGreaterThanOrEqual(1900);
  } finally {
    kv.close();
  }
});

test('a read whose only try runs out of time is still DEADLINE_EXCEEDED: nothing else was heard', async () => {
  const kv = new KvClient(address, { deadlineMs: 400 });
  try {
    await expect(kv.get('k')).rejects.toMatchObject({ code: status.DEADLINE_EXCEEDED, reason: 'DEADLINE_EXCEEDED' });
  } finally {
    kv.close();
  }
});

test('a write tried again after NOT_SENT whose second try the deadline cuts short is DEADLINE_EXCEEDED: that try was sent, and may have been applied', async () => {
  const kv = new KvClient(address, { deadlineMs: 1000 });
  try {
    const error = await kv.set('k', 1).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(sets).toBe(2);
    expect(error).toMatchObject({ code: status.DEADLINE_EXCEEDED, reason: 'DEADLINE_EXCEEDED' });
  } finally {
    kv.close();
  }
});

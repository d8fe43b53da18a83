/**
 * What the watch and transaction parts of `npm run bench` rely on, against
 * a real kv-server and a real etcd: the watch client child sees every write
 * as one event carrying its send time (from a start revision, so no write
 * is missed however late a stream is registered), and the Txn and TTL-set
 * request bodies built for h2load write the key once per call.
 */
import { callOnce, grpcFrame, GrpcFrameReader } from '../../bench/grpc-wire';
import { SERVER_APIS } from '../../bench/server-apis';
import { makeTempDir, startEtcd, type RunningServer as BenchServer } from '../../bench/servers';
import { parseStoreBench } from '../../bench/store-before-after';
import { runWriter, startWatchClient } from '../../bench/watch-load';
import { callOf, SET, TTL_SET, TXN, type Workload } from '../../bench/workloads';
import { describeWithEtcd } from '../support/etcd-cluster';
import { startServer, type RunningServer } from '../support/server-process';

jest.setTimeout(60_000);

async function watchersSeeEveryWrite(server: BenchServer): Promise<void> {
  const client = await startWatchClient(server, 3, 'w/');
  try {
    const keyOf = (index: number): string => `w/${index % 3}/k`;
    await runWriter(server, { concurrency: 2, keyOf, count: 3 });
    const first = await client.wait(3, 20_000);
    expect(first).toMatchObject({ events: 3, samples: 3, timedOut: false });
    await client.reset();
    const writes = await runWriter(server, { concurrency: 4, keyOf, count: 30 });
    expect(writes).toMatchObject({ ok: 30, failed: 0 });
    const stats = await client.wait(30, 20_000);
    expect(stats).toMatchObject({ events: 30, samples: 30, timedOut: false });
    expect(stats.p50Us).toBeGreaterThan(0);
    expect(stats.maxUs).toBeGreaterThanOrEqual(stats.p99Us);
  } finally {
    await client.stop();
  }
}

/** Sends the workload's body twice (after writing its companion keys); the key's version must grow by 2. */
async function bodyWritesOncePerCall(server: BenchServer, workload: Workload): Promise<void> {
  const api = SERVER_APIS[server.name];
  const key = `body/${workload.id}`;
  const set = callOf(SET, server.name);
  for (const companion of [key, ...(workload.companionKeys?.(key) ?? [])]) {
    await callOnce(server, set.method, grpcFrame(api.encode(set.method, set.request(companion))));
  }
  const { method, request } = callOf(workload, server.name);
  const before = await api.readVersion?.(server, key);
  for (let call = 0; call < 2; call++) await callOnce(server, method, grpcFrame(api.encode(method, request(key))));
  expect(await api.readVersion?.(server, key)).toBe((before ?? 0) + 2);
}

test('gRPC frames are split out of chunks however they fall', () => {
  const frames = Buffer.concat([grpcFrame(Buffer.from('ab')), grpcFrame(Buffer.alloc(0)), grpcFrame(Buffer.from('cde'))]);
  const reader = new GrpcFrameReader();
  const messages = [...frames].flatMap((byte) => reader.push(Buffer.from([byte])));
  expect(messages.map((message) => message.toString())).toEqual(['ab', '', 'cde']);
});

test("bench:store's table is read per op, concurrency and size", () => {
  const output = [
    '| op  | conc | 1000 keys | 1000000 keys | 1000000 vs 1000 |',
    '|-----|------|-----------|--------------|-----------------|',
    '| get | 64   | 621,802/s | 47,245/s     | 8%              |',
    '',
    'open 1,000,000 keys: 5627 ms',
  ].join('\n');
  expect(parseStoreBench(output, [1000, 1_000_000])).toEqual({
    opsPerSec: { 'get|64|1000': 621_802, 'get|64|1000000': 47_245 },
    notes: ['open 1,000,000 keys: 5627 ms'],
  });
});

describe('against kv-server', () => {
  let server: RunningServer;
  let bench: BenchServer;
  beforeAll(async () => {
    server = await startServer();
    bench = { name: 'kv', address: server.address, pid: server.child.pid ?? 0, startupMs: 0, stop: () => Promise.resolve() };
  });
  afterAll(() => server.stop());

  test('the watch client sees every write, with its send time', () => watchersSeeEveryWrite(bench));
  test('the Txn body writes its key once per call', () => bodyWritesOncePerCall(bench, TXN));
  test('the TTL-set body writes its key once per call', () => bodyWritesOncePerCall(bench, TTL_SET));
});

describeWithEtcd()('against etcd', () => {
  const dir = makeTempDir('test-etcd');
  let etcd: BenchServer;
  beforeAll(async () => {
    etcd = await startEtcd({ dataDir: dir.dir });
  });
  afterAll(async () => {
    await etcd.stop();
    dir.remove();
  });

  test('the watch client sees every write, with its send time', () => watchersSeeEveryWrite(etcd));
  test('the Txn body writes its key once per call', () => bodyWritesOncePerCall(etcd, TXN));
});

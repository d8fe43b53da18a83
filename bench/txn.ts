/**
 * Transactions and time to live, kv and etcd side by side (both up at once,
 * fresh, the order rotated each round):
 *
 * - h2load at c=64: Set (the baseline), Txn of 2 compares + 2 sets, and
 *   TTL-set (kv: Set with ttl_ms; etcd: Put attached to a lease granted
 *   before the run).
 * - a lease per key: every write its own time to live, from a Node client
 *   with 64 calls in flight: kv one Set with ttl_ms, etcd a LeaseGrant and
 *   then a Put on that lease.
 * - expiry lateness: many keys with a short time to live, written over a
 *   second; a watcher on their prefix times each DELETE event against the
 *   key's deadline (the Set's acknowledgement, for etcd the LeaseGrant's,
 *   plus the time to live). etcd's TTLs are whole seconds.
 */
import { GrpcConnection, grpcFrame } from './grpc-wire';
import { callsFor, measureThroughput, rotate, roundKey } from './measure';
import { cpuSeconds } from './process-usage';
import { log, RunCounter } from './progress';
import type { ExpiryRun, LeasePerKeyRun, SetupRun, Settings, TxnResults } from './results';
import { encodeEtcdRequest, encodeKvRequest } from './server-apis';
import { makeTempDir, startEtcd, startKv, type RunningServer } from './servers';
import { quantile } from './stats';
import { monotonicUs, openWatch } from './watch-streams';
import { ETCD_BENCH_LEASE, SET, TTL_SET, TTL_SET_MS, TXN, VALUE } from './workloads';

export const TXN_WORKLOADS = [SET, TXN, TTL_SET] as const;
const KEY_SPACE = 1000;

/** Lease ids the bench chooses for etcd (etcd takes a requested id), never reused within a run. */
let nextLeaseId = 1_000_000;

function etcdCall(method: string, request: Record<string, unknown>): Buffer {
  return grpcFrame(encodeEtcdRequest(method, request));
}

/** One key with a time to live of its own: kv one call, etcd two. Resolves with the moment its deadline was set. */
async function writeWithTtl(connection: GrpcConnection, server: RunningServer, key: string, ttlMs: number): Promise<number> {
  if (server.name === 'kv') {
    const method = 'kv.v1.KeyValueService/Set';
    await connection.call(method, grpcFrame(encodeKvRequest(method, { key, value: VALUE, ttlMs })));
    return monotonicUs();
  }
  const id = nextLeaseId++;
  await connection.call(
    'etcdserverpb.Lease/LeaseGrant',
    etcdCall('etcdserverpb.Lease/LeaseGrant', { TTL: Math.ceil(ttlMs / 1000), ID: id }),
  );
  const granted = monotonicUs();
  await connection.call('etcdserverpb.KV/Put', etcdCall('etcdserverpb.KV/Put', { key, value: JSON.stringify(VALUE), lease: id }));
  return granted;
}

async function leasePerKey(server: RunningServer, settings: Settings, round: number): Promise<LeasePerKeyRun> {
  const connection = new GrpcConnection(server);
  const latencies: number[] = [];
  let failed = 0;
  let next = 0;
  const cpuBefore = cpuSeconds(server.pid);
  const started = monotonicUs();
  const deadline = started + settings.durationSec * 1e6;
  try {
    await Promise.all(
      Array.from({ length: settings.txn.concurrency }, async () => {
        while (monotonicUs() < deadline) {
          const sent = monotonicUs();
          try {
            await writeWithTtl(connection, server, `ttl/${round}/${next++}`, TTL_SET_MS);
            latencies.push(monotonicUs() - sent);
          } catch {
            failed++;
          }
        }
      }),
    );
  } finally {
    connection.close();
  }
  const seconds = (monotonicUs() - started) / 1e6;
  const cpu = cpuSeconds(server.pid) - cpuBefore;
  latencies.sort((a, b) => a - b);
  return {
    server: server.name as LeasePerKeyRun['server'],
    round,
    keysPerSec: latencies.length / seconds,
    okKeys: latencies.length,
    failed,
    p50Ms: quantile(latencies, 0.5) / 1000,
    p99Ms: quantile(latencies, 0.99) / 1000,
    serverCpuUsPerKey: latencies.length > 0 ? (cpu * 1e6) / latencies.length : Number.NaN,
  };
}

const sleepUntil = (us: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, (us - monotonicUs()) / 1000)));

async function expiry(server: RunningServer, settings: Settings, round: number): Promise<ExpiryRun> {
  const { expiryKeys: keys, expiryTtlMs: ttlMs, expirySpreadMs: spreadMs } = settings.txn;
  const prefix = `exp/${round}/`;
  const deadlines = new Map<string, number>();
  const deletedAt = new Map<string, number>();
  const connection = new GrpcConnection(server);
  let streamError: string | undefined;
  let live = false;
  const cancel = openWatch(connection, server.name as 'kv' | 'etcd', prefix, {
    onEvents(events) {
      const now = monotonicUs();
      for (const event of events) {
        if (event.type === 'delete') deletedAt.set(event.key, now);
        else live = true;
      }
    },
    onEnd(reason) {
      streamError = reason;
    },
  });
  try {
    // The watch is live once it sees a write: one put on the prefix, awaited as an event.
    await writeWithTtl(connection, server, `${prefix}probe`, TTL_SET_MS);
    const liveBy = monotonicUs() + 30e6;
    while (!live && streamError === undefined && monotonicUs() < liveBy) await sleepUntil(monotonicUs() + 10_000);
    if (!live) throw new Error(`${server.name}: the expiry watch saw no event: ${streamError ?? 'timed out'}`);
    const setLatencies: number[] = [];
    const start = monotonicUs() + 200_000;
    const writes: Array<Promise<void>> = [];
    for (let index = 0; index < keys; index++) {
      await sleepUntil(start + (index * spreadMs * 1000) / keys);
      const key = `${prefix}${index}`;
      const sent = monotonicUs();
      writes.push(
        writeWithTtl(connection, server, key, ttlMs).then((armedUs) => {
          deadlines.set(key, armedUs + ttlMs * 1000);
          setLatencies.push(monotonicUs() - sent);
        }),
      );
    }
    await Promise.all(writes);
    // etcd checks for expired leases every 500 ms and revokes at most 1000 a second; wait well past that.
    const waitUntil = monotonicUs() + (ttlMs + spreadMs + 15_000) * 1000;
    while (deletedAt.size < keys && monotonicUs() < waitUntil && streamError === undefined) await sleepUntil(monotonicUs() + 50_000);
    if (streamError !== undefined) throw new Error(`${server.name}: the expiry watch ended: ${streamError}`);
    const lateness = [...deletedAt].flatMap(([key, at]) => {
      const deadline = deadlines.get(key);
      return deadline === undefined ? [] : [(at - deadline) / 1000];
    });
    lateness.sort((a, b) => a - b);
    setLatencies.sort((a, b) => a - b);
    return {
      server: server.name as ExpiryRun['server'],
      round,
      keys,
      expired: lateness.length,
      ttlMs: server.name === 'etcd' ? Math.ceil(ttlMs / 1000) * 1000 : ttlMs,
      p50Ms: quantile(lateness, 0.5),
      p99Ms: quantile(lateness, 0.99),
      maxMs: lateness[lateness.length - 1] ?? Number.NaN,
      setP50Ms: quantile(setLatencies, 0.5) / 1000,
    };
  } finally {
    cancel();
    connection.close();
  }
}

export async function runTxn(settings: Settings, workDir: string): Promise<TxnResults> {
  const kvDir = makeTempDir('txn-kv');
  const etcdDir = makeTempDir('txn-etcd');
  const running: RunningServer[] = [];
  const concurrency = settings.txn.concurrency;
  try {
    running.push(await startKv({ dataDir: kvDir.dir }), await startEtcd({ dataDir: etcdDir.dir }));
    const etcd = running[1];
    const connection = new GrpcConnection(etcd);
    await connection.call(
      'etcdserverpb.Lease/LeaseGrant',
      etcdCall('etcdserverpb.Lease/LeaseGrant', { TTL: Math.ceil(TTL_SET_MS / 1000) * 2, ID: ETCD_BENCH_LEASE }),
    );
    connection.close();
    log(`txn: ${running.map((server) => `${server.name} ${server.address}`).join(', ')}`);

    const rates = new Map<string, number>();
    for (const workload of TXN_WORKLOADS) {
      for (const server of running) {
        const warm = await measureThroughput({
          server,
          workload,
          concurrency,
          key: roundKey(KEY_SPACE, 0),
          durationSec: settings.warmupSec,
          workDir,
        });
        rates.set(`${server.name}/${workload.id}`, warm.okPerSec);
      }
    }
    const runs: SetupRun[] = [];
    const perKey: LeasePerKeyRun[] = [];
    const expiries: ExpiryRun[] = [];
    const counter = new RunCounter(settings.rounds * running.length * (TXN_WORKLOADS.length + 2), 'txn');
    for (let round = 0; round < settings.rounds; round++) {
      for (const workload of TXN_WORKLOADS) {
        for (const server of rotate(running, round)) {
          const rateKey = `${server.name}/${workload.id}`;
          const throughput = await measureThroughput({
            server,
            workload,
            concurrency,
            key: roundKey(KEY_SPACE, round),
            calls: callsFor(rates.get(rateKey) ?? 0, settings.durationSec, concurrency),
            workDir,
          });
          rates.set(rateKey, throughput.okPerSec);
          runs.push({ setup: server.name, workload: workload.id, round, throughput });
          counter.step(`round ${round + 1} ${workload.label} ${server.name}: ${Math.round(throughput.okPerSec)}/s`);
        }
      }
      for (const server of rotate(running, round)) {
        const run = await leasePerKey(server, settings, round);
        perKey.push(run);
        counter.step(`round ${round + 1} lease per key ${server.name}: ${Math.round(run.keysPerSec)} keys/s`);
      }
      for (const server of rotate(running, round)) {
        const run = await expiry(server, settings, round);
        expiries.push(run);
        counter.step(
          `round ${round + 1} expiry ${server.name}: ${run.expired}/${run.keys} expired, late p50 ${run.p50Ms.toFixed(1)} ms, p99 ${run.p99Ms.toFixed(1)} ms, max ${run.maxMs.toFixed(1)} ms`,
        );
      }
    }
    return { runs, leasePerKey: perKey, expiry: expiries };
  } finally {
    await Promise.all(running.map((server) => server.stop()));
    kvDir.remove();
    etcdDir.remove();
  }
}

/**
 * Fills a fresh data directory with keys k0..k(N-1), each holding the bench
 * value, before the server that is measured is started on it: so that Gets
 * find their keys, and so that the start-up of a server with N keys is
 * measured too. kv is filled through its store API (bench/preload-store.ts);
 * etcd through its own gRPC API, many Puts per Txn, on an etcd started for
 * the purpose and stopped again.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { GrpcConnection, grpcFrame } from './grpc-wire';
import { log } from './progress';
import { encodeEtcdRequest } from './server-apis';
import { REPO_ROOT, startEtcd } from './servers';
import { keyName, VALUE } from './workloads';

/** etcd's default --max-txn-ops: the most Puts one Txn may carry. */
const PUTS_PER_TXN = 128;
/** Txns in flight on the one connection: enough to fill etcd's batches. */
const TXNS_IN_FLIGHT = 16;

export interface PreloadOptions {
  /** etcd's --quota-backend-bytes, for stores larger than its 2 GiB default allows. */
  etcdQuotaBackendBytes?: number;
}

export interface Preloaded {
  ms: number;
  /** kv only: the V8 heap its store took with every key loaded (the index kv-server builds on start-up is the same). */
  heapUsedBytes?: number;
}

/** Fills `dataDir` for `server`. */
export async function preload(server: 'kv' | 'etcd', dataDir: string, keyCount: number, options: PreloadOptions = {}): Promise<Preloaded> {
  const started = performance.now();
  if (server === 'kv') {
    const { heapUsedBytes } = await preloadKv(dataDir, keyCount);
    return { ms: performance.now() - started, heapUsedBytes };
  }
  await preloadEtcd(dataDir, keyCount, options);
  return { ms: performance.now() - started };
}

function preloadKv(dataDir: string, keyCount: number): Promise<{ heapUsedBytes: number }> {
  // Heap room for the largest stores: whether kv-server fits them in its default heap is what the scale runs find out.
  const script = path.join(REPO_ROOT, 'bench', 'preload-store.ts');
  const args = ['--max-old-space-size=16384', '--expose-gc', '--import', 'tsx', script, dataDir, String(keyCount)];
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      if (code !== 0) return reject(new Error(`preloading kv with ${keyCount} keys failed (code ${code}, signal ${signal}):\n${stderr}`));
      try {
        resolve(JSON.parse(stdout) as { heapUsedBytes: number });
      } catch {
        reject(new Error(`preload-store printed no result: ${stdout}`));
      }
    });
  });
}

async function preloadEtcd(dataDir: string, keyCount: number, options: PreloadOptions): Promise<void> {
  const etcd = await startEtcd({ dataDir, quotaBackendBytes: options.etcdQuotaBackendBytes });
  const connection = new GrpcConnection(etcd);
  const value = JSON.stringify(VALUE);
  const method = 'etcdserverpb.KV/Txn';
  try {
    let next = 0;
    let reported = 0;
    const loader = async (): Promise<void> => {
      while (next < keyCount) {
        const from = next;
        next = Math.min(keyCount, next + PUTS_PER_TXN);
        const success = [];
        for (let index = from; index < next; index++) success.push({ request_put: { key: keyName(index), value } });
        await connection.call(method, grpcFrame(encodeEtcdRequest(method, { success })));
        if (next - reported >= keyCount / 10 && keyCount >= 1_000_000) {
          reported = next;
          log(`  etcd: ${next.toLocaleString('en-US')} of ${keyCount.toLocaleString('en-US')} keys loaded`);
        }
      }
    };
    await Promise.all(Array.from({ length: TXNS_IN_FLIGHT }, loader));
  } finally {
    connection.close();
    await etcd.stop();
  }
}

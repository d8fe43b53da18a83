/**
 * What bounds Set at c=64 on one server: kv-server (one process, or
 * `--workers N`) under h2load's Set on one key, and from the store's own
 * metrics over the measured run the commit batches it made: how many, how
 * many writes each, and the mean fdatasync. Each batch waits for the one
 * before it, so calls/s = writes per batch / cycle, where the cycle is the
 * fdatasync plus whatever else passes before the next batch starts (the
 * owner's CPU, and waiting for the next calls to reach it). Not a test.
 *
 *   npx tsx bench/commit-cycle.ts [--workers 1,2] [--connections 4] [--rounds 2] [--calls 60000]
 *
 * Needs `npm run build` and h2load (scripts/install-bench-tools.sh).
 */
import { parseArgs } from 'node:util';
import { measureThroughput } from './measure';
import { freePort, makeTempDir, startKv } from './servers';
import { SET } from './workloads';

const METRIC = /^(kv_store_(?:fsync_duration_seconds|commit_batch_writes)_(?:sum|count))\s+(\S+)/;

async function storeMetrics(port: number): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const found: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const match = METRIC.exec(line);
    if (match) found[match[1]] = Number(match[2]);
  }
  return found;
}

async function measure(workers: number, connections: number, calls: number): Promise<string> {
  const work = makeTempDir('commit-cycle');
  const port = await freePort();
  const kv = await startKv({ dataDir: work.dir, args: ['--workers', String(workers), '--metrics-listen', `127.0.0.1:${port}`] });
  try {
    const run = { server: kv, workload: SET, concurrency: 64, connections, key: 'k1', workDir: work.dir };
    await measureThroughput({ ...run, durationSec: 2 });
    const before = await storeMetrics(port);
    const result = await measureThroughput({ ...run, calls });
    const after = await storeMetrics(port);
    const delta = (name: string): number => after[name] - before[name];
    const batches = delta('kv_store_commit_batch_writes_count');
    const fsyncMs = (1000 * delta('kv_store_fsync_duration_seconds_sum')) / delta('kv_store_fsync_duration_seconds_count');
    const cycleMs = (1000 * result.seconds) / batches;
    const cores = (result.okPerSec * result.serverCpuUsPerCall) / 1e6;
    return [
      `| ${workers} | ${Math.round(result.okPerSec).toLocaleString('en-US')} | ${Math.round(result.serverCpuUsPerCall)} | ${cores.toFixed(2)}`,
      `${(delta('kv_store_commit_batch_writes_sum') / batches).toFixed(1)} | ${fsyncMs.toFixed(2)} | ${cycleMs.toFixed(2)} | ${(cycleMs - fsyncMs).toFixed(2)} |`,
    ].join(' | ');
  } finally {
    await kv.stop();
    work.remove();
  }
}

async function main(): Promise<void> {
  const { values: flags } = parseArgs({
    options: {
      workers: { type: 'string', default: '1,2' },
      connections: { type: 'string', default: '4' },
      rounds: { type: 'string', default: '2' },
      calls: { type: 'string', default: '60000' },
    },
  });
  const counts = flags.workers.split(',').map(Number);
  process.stdout.write(`Set c=64 over ${flags.connections} connections, --fsync always, ${flags.calls} calls a run\n\n`);
  process.stdout.write(
    '| workers | calls/s | server CPU µs/call | server cores | writes per batch | fdatasync ms | cycle ms | cycle − fdatasync ms |\n',
  );
  process.stdout.write('|---:|---:|---:|---:|---:|---:|---:|---:|\n');
  for (let round = 0; round < Number(flags.rounds); round++)
    for (const workers of counts) process.stdout.write(`${await measure(workers, Number(flags.connections), Number(flags.calls))}\n`);
}

void main();

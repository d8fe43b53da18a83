/**
 * `npm run bench:etcd`: the etcd engine side by side, in one run, on one
 * 3-member etcd cluster on loopback:
 *
 *   etcd        etcd itself, Put and linearizable Range, one connection to one member (the anchor)
 *   kv/etcd ×1  one kv frontend over the cluster
 *   kv/etcd ×2  two kv frontends over the cluster, the load split between them
 *   kv/file     the embedded file engine (fsync always), for scale
 *
 * Set and Get of 100-byte JSON values over 10k preloaded keys at c=64 (ghz,
 * one connection per target), interleaved rounds. Writes
 * docs/benchmarks-etcd.md and docs/benchmarks-etcd.svg.
 *
 *   --duration S   seconds per timed run (default 10)
 *   --rounds N     interleaved rounds (default 3)
 *   --out DIR      where the report goes (default docs/)
 *
 * Needs `npm run build` (frontends run as dist/main.js) and
 * scripts/install-bench-tools.sh (ghz, etcd).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startEtcdCluster } from '../test/support/etcd-cluster';
import { runLoad, type LoadResult, type ProtoMethod } from './ghz';
import { log } from './progress';
import { makeTempDir, REPO_ROOT, startKv, type RunningServer } from './servers';
import { summarize } from './stats';
import { SERVER_APIS } from './server-apis';
import { callOf, GET, keyName, randomKeys, sequentialKeys, SET, VALUE } from './workloads';

type Operation = 'set' | 'get';

function methodFor(server: 'kv' | 'etcd', operation: Operation): ProtoMethod {
  return { ...SERVER_APIS[server].proto, call: callOf(operation === 'set' ? SET : GET, server).method };
}

type Setup = 'etcd' | 'kv-etcd-1' | 'kv-etcd-2' | 'kv-file';
const SETUPS: readonly Setup[] = ['etcd', 'kv-etcd-1', 'kv-etcd-2', 'kv-file'];
const LABELS: Record<Setup, string> = {
  etcd: 'etcd directly (anchor)',
  'kv-etcd-1': 'kv, 1 frontend over etcd',
  'kv-etcd-2': 'kv, 2 frontends over etcd',
  'kv-file': 'kv, file engine',
};
const COLORS: Record<Setup, string> = { etcd: '#f59e0b', 'kv-etcd-1': '#60a5fa', 'kv-etcd-2': '#1d4ed8', 'kv-file': '#9ca3af' };
const CONCURRENCY = 64;
const KEY_SPACE = 10_000;
const PREFIX = 'kv/';

interface Target {
  method: (operation: Operation) => ProtoMethod;
  addresses: string[];
  /** Request messages for ghz, by operation. */
  messages: (operation: Operation, keys: number[]) => unknown[];
}

interface Row {
  setup: Setup;
  operation: Operation;
  round: number;
  okPerSec: number;
  p99Ms: number;
  errors: number;
}

const kvMessages = (operation: Operation, keys: number[]): unknown[] =>
  keys.map((i) => (operation === 'set' ? { key: keyName(i), value: VALUE } : { key: keyName(i) }));
// etcd's own requests for the same kv keys and JSON bytes; Range is linearizable, as the kv frontend's Get is.
const etcdMessages = (operation: Operation, keys: number[]): unknown[] =>
  keys.map((i) => (operation === 'set' ? { key: PREFIX + keyName(i), value: JSON.stringify(VALUE) } : { key: PREFIX + keyName(i) }));

/** A kv frontend over the cluster, as dist/main.js. */
async function startFrontend(endpoints: string[]): Promise<{ address: string; child: ChildProcess }> {
  const args = [path.join(REPO_ROOT, 'dist/main.js'), '--listen', '127.0.0.1:0', '--engine', 'etcd'];
  args.push('--etcd-endpoints', endpoints.join(','), '--etcd-prefix', PREFIX, '--log-level', 'warn');
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      const match = /kv-server listening on (\S+)/.exec(output);
      if (match) resolve({ address: match[1], child });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => reject(new Error(`kv frontend exited (${code}):\n${output}`)));
  });
}

/** One timed run: the concurrency split evenly over the target's addresses, one ghz each, at once. */
async function measure(target: Target, operation: Operation, dir: string, durationSec: number, label: string): Promise<LoadResult[]> {
  const share = CONCURRENCY / target.addresses.length;
  return Promise.all(
    target.addresses.map((address, i) => {
      const dataFile = path.join(dir, `${label}-${operation}-${i}.json`);
      writeFileSync(dataFile, JSON.stringify(target.messages(operation, randomKeys(KEY_SPACE, KEY_SPACE, i + 1))));
      return runLoad({
        method: target.method(operation),
        address,
        dataFile,
        concurrency: share,
        durationSec,
        reportFile: path.join(dir, `report-${label}-${i}.json`),
      });
    }),
  );
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { duration: { type: 'string' }, rounds: { type: 'string' }, out: { type: 'string' } } });
  const durationSec = Number(values.duration ?? 10);
  const rounds = Number(values.rounds ?? 3);
  const out = path.resolve(values.out ?? path.join(REPO_ROOT, 'docs'));
  const work = makeTempDir('bench-etcd');
  const fileDir = makeTempDir('bench-etcd-file');
  const cluster = await startEtcdCluster({ watchProgressMs: 5000 });
  const children: ChildProcess[] = [];
  let fileKv: RunningServer | undefined;
  try {
    const [f1, f2] = await Promise.all([startFrontend(cluster.endpoints), startFrontend(cluster.endpoints)]);
    children.push(f1.child, f2.child);
    fileKv = await startKv({ dataDir: fileDir.dir });
    const kvMethod = (operation: Operation): ProtoMethod => methodFor('kv', operation);
    const targets: Record<Setup, Target> = {
      etcd: {
        method: (operation) => methodFor('etcd', operation),
        addresses: [cluster.endpoints[0].replace('http://', '')],
        messages: etcdMessages,
      },
      'kv-etcd-1': { method: kvMethod, addresses: [f1.address], messages: kvMessages },
      'kv-etcd-2': { method: kvMethod, addresses: [f1.address, f2.address], messages: kvMessages },
      'kv-file': { method: kvMethod, addresses: [fileKv.address], messages: kvMessages },
    };
    log(`etcd ${cluster.endpoints.join(',')}; frontends ${f1.address} ${f2.address}; file engine ${fileKv.address}`);

    // Every key exists before Gets: once through a frontend (etcd holds it for all three etcd setups), once into the file engine.
    for (const target of [targets['kv-etcd-1'], targets['kv-file']]) {
      const dataFile = path.join(work.dir, 'preload.json');
      writeFileSync(dataFile, JSON.stringify(kvMessages('set', sequentialKeys(KEY_SPACE))));
      const result = await runLoad({
        method: kvMethod('set'),
        address: target.addresses[0],
        dataFile,
        concurrency: 16,
        total: KEY_SPACE,
        reportFile: path.join(work.dir, 'report-preload.json'),
      });
      if (result.okCount !== KEY_SPACE)
        throw new Error(`preload: ${result.okCount} of ${KEY_SPACE} writes succeeded (${result.firstError})`);
    }
    for (const setup of SETUPS)
      for (const operation of ['set', 'get'] as const) await measure(targets[setup], operation, work.dir, 2, `warm-${setup}`);
    log('preloaded and warmed up');

    const rows: Row[] = [];
    for (let round = 0; round < rounds; round++) {
      for (const operation of ['set', 'get'] as const) {
        const order = [...SETUPS.slice(round % SETUPS.length), ...SETUPS.slice(0, round % SETUPS.length)];
        for (const setup of order) {
          const results = await measure(targets[setup], operation, work.dir, durationSec, setup);
          const row: Row = {
            setup,
            operation,
            round,
            okPerSec: results.reduce((sum, r) => sum + r.okPerSec, 0),
            p99Ms: Math.max(...results.map((r) => r.p99Ms)),
            errors: results.reduce((sum, r) => sum + r.errorCount, 0),
          };
          rows.push(row);
          log(
            `round ${round + 1} ${operation} ${setup}: ${Math.round(row.okPerSec)}/s p99 ${row.p99Ms.toFixed(2)} ms${row.errors ? `, ${row.errors} errors` : ''}`,
          );
        }
      }
    }
    mkdirSync(out, { recursive: true });
    writeFileSync(path.join(out, 'benchmarks-etcd.md'), renderReport(rows, durationSec, rounds));
    writeFileSync(path.join(out, 'benchmarks-etcd.svg'), renderChart(rows, rounds));
    log(`wrote ${path.join(out, 'benchmarks-etcd.md')} and benchmarks-etcd.svg`);
  } finally {
    for (const child of children) child.kill('SIGTERM');
    await fileKv?.stop();
    await cluster.stop();
    work.remove();
    fileDir.remove();
  }
}

interface Cell {
  okPerSec: number;
  p99Ms: number;
  errors: number;
}

function cells(rows: Row[]): Map<string, Cell> {
  const map = new Map<string, Cell>();
  for (const setup of SETUPS) {
    for (const operation of ['set', 'get'] as const) {
      const mine = rows.filter((r) => r.setup === setup && r.operation === operation);
      map.set(`${setup}/${operation}`, {
        okPerSec: summarize(mine.map((r) => r.okPerSec)).median,
        p99Ms: summarize(mine.map((r) => r.p99Ms)).median,
        errors: mine.reduce((sum, r) => sum + r.errors, 0),
      });
    }
  }
  return map;
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

function renderReport(rows: Row[], durationSec: number, rounds: number): string {
  const table = cells(rows);
  const lines = [
    '# The etcd engine: benchmark',
    '',
    `Generated by \`npm run bench:etcd -- --duration ${durationSec} --rounds ${rounds}\` on ${new Date().toISOString().slice(0, 10)};`,
    `${cpus().length} cores (${cpus()[0]?.model ?? 'unknown CPU'}) shared by everything below: three etcd members, the kv processes and ghz`,
    `(load average ${loadavg()[1].toFixed(1)} over the last 5 minutes when the run ended: anything above ${cpus().length} means other work shared the cores too).`,
    'Set and Get of a 100-byte JSON value over 10,000 preloaded keys, 64 calls in flight (for two frontends, 32 on each),',
    `medians of ${rounds} interleaved round${rounds === 1 ? '' : 's'} of ${durationSec} s. etcd's Get is a linearizable Range, as the frontend's is.`,
    '',
    '![calls/s by setup](benchmarks-etcd.svg)',
    '',
    '| setup | Set calls/s | Set p99 ms | Get calls/s | Get p99 ms | Set vs etcd | Get vs etcd |',
    '|---|---:|---:|---:|---:|---:|---:|',
  ];
  const anchor = { set: table.get('etcd/set')?.okPerSec ?? Number.NaN, get: table.get('etcd/get')?.okPerSec ?? Number.NaN };
  for (const setup of SETUPS) {
    const set = table.get(`${setup}/set`) as Cell;
    const get = table.get(`${setup}/get`) as Cell;
    lines.push(
      `| ${LABELS[setup]} | ${fmt(set.okPerSec)} | ${set.p99Ms.toFixed(1)} | ${fmt(get.okPerSec)} | ${get.p99Ms.toFixed(1)} | ${(set.okPerSec / anchor.set).toFixed(2)} | ${(get.okPerSec / anchor.get).toFixed(2)} |`,
    );
  }
  const errors = rows.reduce((sum, r) => sum + r.errors, 0);
  lines.push('', errors === 0 ? 'No call failed.' : `${errors} calls failed (see the run's log).`, '');
  const one = { set: table.get('kv-etcd-1/set') as Cell, get: table.get('kv-etcd-1/get') as Cell };
  const perCallUs = (op: 'set' | 'get'): string => fmt(1e6 / one[op].okPerSec - 1e6 / anchor[op]);
  lines.push(
    `At c=64 a call through one frontend costs about ${perCallUs('set')} µs (Set) and ${perCallUs('get')} µs (Get) of`,
    'wall time more than the same call sent to etcd itself (1/throughput difference). See docs/scaling.md for what it is spent on and what scales it.',
    '',
  );
  return `${lines.join('\n')}`;
}

function renderChart(rows: Row[], rounds: number): string {
  const table = cells(rows);
  const width = 880;
  const height = 400;
  const top = 80;
  const bottom = height - 60;
  const left = 70;
  const panel = (width - left - 60) / 2;
  const max = Math.max(...[...table.values()].map((c) => c.okPerSec)) * 1.15;
  const power = 10 ** Math.floor(Math.log10(max / 5));
  const step = [1, 2, 5, 10].map((f) => f * power).find((s) => s * 6 >= max) ?? 10 * power;
  const y = (v: number): number => bottom - (v / max) * (bottom - top);
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="${width / 2}" y="24" text-anchor="middle" font-size="16" font-weight="600">The etcd engine: calls/s at c=64 (higher is better)</text>`,
    `<text x="${width / 2}" y="44" text-anchor="middle" fill="#4b5563">median of ${rounds} round${rounds === 1 ? '' : 's'} · 3-member etcd 3.4 on loopback · ${cpus().length} shared cores · ghz</text>`,
  ];
  for (let tick = 0; tick <= max; tick += step) {
    out.push(`<line x1="${left}" x2="${width - 20}" y1="${y(tick)}" y2="${y(tick)}" stroke="#e5e7eb"/>`);
    out.push(`<text x="${left - 8}" y="${y(tick) + 4}" text-anchor="end" fill="#374151">${fmt(tick)}</text>`);
  }
  (['set', 'get'] as const).forEach((operation, p) => {
    const x0 = left + p * (panel + 40);
    out.push(
      `<text x="${x0 + panel / 2}" y="${top - 14}" text-anchor="middle" font-size="14" font-weight="600">${operation === 'set' ? 'Set' : 'Get'}</text>`,
    );
    const bar = (panel * 0.8) / SETUPS.length;
    SETUPS.forEach((setup, i) => {
      const value = table.get(`${setup}/${operation}`)?.okPerSec ?? 0;
      const x = x0 + panel * 0.1 + i * bar;
      out.push(`<rect x="${x + 2}" y="${y(value)}" width="${bar - 4}" height="${bottom - y(value)}" fill="${COLORS[setup]}"/>`);
      out.push(`<text x="${x + bar / 2}" y="${y(value) - 5}" text-anchor="middle" font-size="11">${fmt(value)}</text>`);
    });
    out.push(`<line x1="${x0}" x2="${x0 + panel}" y1="${bottom}" y2="${bottom}" stroke="#6b7280"/>`);
  });
  let lx = 60;
  for (const setup of SETUPS) {
    out.push(`<rect x="${lx}" y="${height - 30}" width="12" height="12" fill="${COLORS[setup]}"/>`);
    out.push(`<text x="${lx + 18}" y="${height - 20}">${LABELS[setup]}</text>`);
    lx += 200;
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

main().catch((error: unknown) => {
  process.stderr.write(`bench:etcd: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});

/**
 * Benchmarks the embedded file store in-process: `npm run bench:store`
 * (node --expose-gc --import tsx bench/store.ts). Not a test.
 *
 * For each size: ops/s of get (concurrency 1 and 64) and of set (each fsync
 * mode, concurrency 1 and 64, overwriting random existing keys), 100-byte
 * JSON values; and gets and sets over 1000 hot keys, the 1k-key rows' access
 * pattern at every size. At the largest size, right after populating it
 * (and letting the compaction it set off finish): the open alone, in a fresh
 * child process (bench/store-open.ts, reporting the RSS node and tsx had
 * before the open too), and the real server (dist/main.js, `npm run build`
 * first) on the directory: time from spawn to ready, and its VmRSS once
 * ready. Disk vs live bytes after churn.
 *
 * Flags: --sizes 1000,100000,1000000  --seconds 1.5  --churn 1000000  --dir /tmp/x
 *        --open-only: populate the largest size and measure its start-up alone
 *        --history-changes N: the watch history window's size in changes (default: the store's)
 *        --worst-case: measure start-up (open and server) with the largest log a
 *          restart can meet: after populating, a child process overwrites random
 *          keys until the next checkpoint is just short of due
 *          (bench/store-tail-writer.ts), and is killed with SIGKILL there
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { type FileStore, type FsyncMode, openFileStore } from '../src/store/file';
import { startServer } from '../test/support/server-process';
import { cpuSeconds, memoryOf } from './process-usage';
import { benchKey, benchValue } from './store-values';

const { values: flags } = parseArgs({
  options: {
    sizes: { type: 'string', default: '1000,100000,1000000' },
    seconds: { type: 'string', default: '1.5' },
    churn: { type: 'string', default: '1000000' },
    dir: { type: 'string' },
    'open-only': { type: 'boolean', default: false },
    'history-changes': { type: 'string' },
    'worst-case': { type: 'boolean', default: false },
  },
});
const sizes = flags.sizes.split(',').map(Number);
const seconds = Number(flags.seconds);
const churnWrites = Number(flags.churn);
const feed = flags['history-changes'] === undefined ? {} : { history: { maxChanges: Number(flags['history-changes']) } };
const root = fs.mkdtempSync(path.join(flags.dir ?? os.tmpdir(), 'kv-bench-'));

/** Random ints without Math.random's cost showing up in the numbers. */
let seed = 12345;
function rand(n: number): number {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed % n;
}

async function populate(store: FileStore, n: number): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: 256 }, async () => {
      while (next < n) {
        const i = next++;
        await store.set(benchKey(i), benchValue(i, 0));
      }
    }),
  );
}

/** Runs `op` from `concurrency` workers for the configured time; returns ops/s. */
function measure(concurrency: number, op: () => Promise<unknown>): Promise<number> {
  return measureFor(seconds, concurrency, op);
}

async function measureFor(forSeconds: number, concurrency: number, op: () => Promise<unknown>): Promise<number> {
  global.gc?.();
  let count = 0;
  const start = performance.now();
  const deadline = start + forSeconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        // Batches of 16 between clock reads keep the clock out of the numbers.
        for (let j = 0; j < 16; j++) await op();
        count += 16;
      }
    }),
  );
  return count / ((performance.now() - start) / 1000);
}

type Row = { size: number; op: string; concurrency: number; opsPerSec: number };

type Opened = { ms: number; rssBytes: number; baseRssBytes: number; heapBytes: number; keys: number };
let opened: Opened | undefined;
type Served = { ms: number; cpuSeconds: number; rssBytes: number; peakRssBytes: number; files: string };
let served: Served | undefined;

/**
 * Open time and RSS in a fresh process, on the directory just after it was
 * populated (n keys: the newest checkpoint and the logs after it, which may
 * hold up to an eighth of the data; with --worst-case, just short of that), so the number does not depend on how
 * many writes the timed runs got through.
 */
function measureOpen(dir: string): Opened {
  const out = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', path.join(__dirname, 'store-open.ts'), dir], {
    encoding: 'utf8',
  });
  return JSON.parse(out) as Opened;
}

/** The server process on the directory: spawn to ready (health SERVING, the address logged), and its VmRSS then. */
async function measureServer(dir: string): Promise<Served> {
  const files = fs
    .readdirSync(dir)
    .filter((f) => /\.(log|snap)$/.test(f))
    .map((f) => `${f} ${mb(fs.statSync(path.join(dir, f)).size)}`)
    .join(', ');
  const started = performance.now();
  const server = await startServer({ dataDir: dir, args: ['--log-level', 'warn'], timeoutMs: 600_000 });
  const ms = performance.now() - started;
  const memory = memoryOf(server.child.pid as number);
  const cpu = cpuSeconds(server.child.pid as number);
  await server.stop();
  return { ms, cpuSeconds: cpu, rssBytes: memory.rssBytes, peakRssBytes: memory.peakRssBytes, files };
}

type Tail = { writes: number; checkpointProgress: number; diskBytes: number; liveBytes: number };
let tail: Tail | undefined;

/** The worst case for a restart: the logs since the checkpoint just short of the next one, and the writer SIGKILLed. */
async function writeTailAndKill(dir: string, keys: number): Promise<Tail> {
  const history = flags['history-changes'] === undefined ? [] : [flags['history-changes']];
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, 'store-tail-writer.ts'), dir, String(keys), ...history], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  const ready = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      const line = out.split('\n').find((l) => l.startsWith('ready '));
      if (line !== undefined) resolve(line);
    });
    child.on('exit', (code) => reject(new Error(`store-tail-writer exited with ${code} before it was ready`)));
  });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  child.kill('SIGKILL');
  await exited;
  return JSON.parse(ready.slice('ready '.length)) as Tail;
}

/** Waits for compactions (checkpoints) set off by the writes so far to finish: the state a server would restart from. */
async function settle(store: FileStore): Promise<void> {
  const deadline = Date.now() + 600_000;
  while (store.diskUsage.compacting && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
}

async function benchSize(n: number, rows: Row[]): Promise<void> {
  const dir = path.join(root, `size-${n}`);
  let store = await openFileStore({ dataDir: dir, fsync: 'never', feed });
  await populate(store, n);
  await settle(store);
  await store.close();
  if (n === sizes[sizes.length - 1] && flags['worst-case']) tail = await writeTailAndKill(dir, n);
  if (n === sizes[sizes.length - 1]) {
    // The server first: with --worst-case, it is the restart right after the SIGKILL.
    served = await measureServer(dir);
    opened = measureOpen(dir);
    if (flags['open-only']) return;
  }
  let w = 1;
  for (const mode of ['always', 'interval', 'never'] as FsyncMode[]) {
    store = await openFileStore({ dataDir: dir, fsync: mode, feed });
    if (mode === 'always') {
      for (const c of [1, 64]) {
        const ops = await measure(c, () => store.get(benchKey(rand(n))));
        rows.push({ size: n, op: 'get', concurrency: c, opsPerSec: ops });
        report(rows.at(-1) as Row);
      }
      // The same gets over a hot set of 1000 keys: the access pattern of the
      // 1k-key row at every size. Separates the algorithm's cost (flat: a Map
      // lookup) from cache misses of random access over a big heap.
      const hot = await measure(1, () => store.get(benchKey(rand(Math.min(n, 1000)))));
      rows.push({ size: n, op: 'get (1k hot keys)', concurrency: 1, opsPerSec: hot });
      report(rows.at(-1) as Row);
    }
    if (mode === 'never') {
      // Overwrites of 1000 hot keys, likewise. Uniformly random overwrites at 1M
      // keys also keep every new entry alive past the young generation (at 1k
      // keys it is overwritten, and dies young, within a millisecond or two), so
      // the garbage collector copies it out: a cost of the live set, not of the index.
      const hot = await measure(64, () => {
        const i = rand(Math.min(n, 1000));
        return store.set(benchKey(i), benchValue(i, w++));
      });
      rows.push({ size: n, op: `set fsync=never (1k hot keys)`, concurrency: 64, opsPerSec: hot });
      report(rows.at(-1) as Row);
    }
    for (const c of [1, 64]) {
      const ops = await measure(c, () => {
        const i = rand(n);
        return store.set(benchKey(i), benchValue(i, w++));
      });
      rows.push({ size: n, op: `set fsync=${mode}`, concurrency: c, opsPerSec: ops });
      report(rows.at(-1) as Row);
    }
    await store.close();
  }
}

function report(r: Row): void {
  process.stderr.write(`  ${r.size} ${r.op} c=${r.concurrency}: ${Math.round(r.opsPerSec)} ops/s\n`);
}

function reportOpen(): void {
  if (opened === undefined || served === undefined) throw new Error('open was not measured');
  if (tail !== undefined) {
    console.log(
      `worst case: ${tail.writes.toLocaleString('en-US')} overwrites after the checkpoint, the next one ` +
        `${(tail.checkpointProgress * 100).toFixed(0)}% due, then SIGKILL; disk ${mb(tail.diskBytes)}, live ${mb(tail.liveBytes)}`,
    );
  }
  console.log(
    `open ${opened.keys.toLocaleString('en-US')} keys: ${opened.ms.toFixed(0)} ms, RSS ${mb(opened.rssBytes)} ` +
      `(node + tsx before the open: ${mb(opened.baseRssBytes)}; added by the open: ${mb(opened.rssBytes - opened.baseRssBytes)}; ` +
      `heap used ${mb(opened.heapBytes)})`,
  );
  console.log(
    `server on those ${opened.keys.toLocaleString('en-US')} keys: ready ${served.ms.toFixed(0)} ms after spawn ` +
      `(CPU ${(served.cpuSeconds * 1000).toFixed(0)} ms by then, all threads), VmRSS ${mb(served.rssBytes)} (peak ${mb(served.peakRssBytes)}); data files: ${served.files}`,
  );
}

function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

async function churn(): Promise<{ keys: number; writes: number; diskBytes: number; liveBytes: number; onDisk: number }> {
  const dir = path.join(root, 'churn');
  const keys = 100_000;
  const store = await openFileStore({ dataDir: dir, fsync: 'never', feed });
  let next = 0;
  await Promise.all(
    Array.from({ length: 256 }, async () => {
      while (next < churnWrites) {
        const w = next++;
        const i = w < keys ? w : rand(keys);
        await store.set(benchKey(i), benchValue(i, w));
      }
    }),
  );
  await settle(store);
  const usage = store.diskUsage;
  await store.close();
  let onDisk = 0;
  for (const f of fs.readdirSync(dir)) onDisk += fs.statSync(path.join(dir, f)).size;
  return { keys, writes: churnWrites, diskBytes: usage.diskBytes, liveBytes: usage.liveBytes, onDisk };
}

/**
 * Runs every measured operation briefly on a throwaway store first, so the
 * first size measured (1k keys) does not pay for JIT warm-up the later ones skip.
 */
async function warmUp(): Promise<void> {
  const store = await openFileStore({ dataDir: path.join(root, 'warm-up'), fsync: 'never', feed });
  await populate(store, 1000);
  for (let round = 0; round < 2; round++) {
    await measureFor(0.3, 64, () => store.get(benchKey(rand(1000))));
    await measureFor(0.3, 64, () => {
      const i = rand(1000);
      return store.set(benchKey(i), benchValue(i, round));
    });
  }
  await store.close();
}

async function main(): Promise<void> {
  process.stderr.write(`kv store benchmark in ${root} (node ${process.version}, ${os.cpus().length} cpus)\n`);
  await warmUp();
  const rows: Row[] = [];
  if (flags['open-only']) {
    await benchSize(sizes[sizes.length - 1], rows);
    reportOpen();
    fs.rmSync(root, { recursive: true, force: true });
    return;
  }
  for (const n of sizes) await benchSize(n, rows);

  const largest = sizes[sizes.length - 1];
  const churned = await churn();

  const ops = [...new Set(rows.map((r) => `${r.op}|${r.concurrency}`))];
  const header = ['op', 'conc', ...sizes.map((s) => `${s} keys`), `${largest} vs ${sizes[0]}`];
  const lines = [header];
  for (const o of ops) {
    const [op, c] = o.split('|');
    const bySize = sizes.map((s) => rows.find((r) => r.size === s && `${r.op}|${r.concurrency}` === o)?.opsPerSec ?? 0);
    const ratio = bySize[bySize.length - 1] / bySize[0];
    lines.push([op, c, ...bySize.map((v) => `${Math.round(v).toLocaleString('en-US')}/s`), `${(ratio * 100).toFixed(0)}%`]);
  }
  const widths = header.map((_, i) => Math.max(...lines.map((l) => l[i].length)));
  const fmt = (l: string[]): string => `| ${l.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  console.log(fmt(lines[0]));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const l of lines.slice(1)) console.log(fmt(l));
  console.log();
  reportOpen();
  console.log(
    `churn ${churned.writes.toLocaleString('en-US')} writes over ${churned.keys.toLocaleString('en-US')} keys: ` +
      `disk ${mb(churned.onDisk)}, live ${mb(churned.liveBytes)} (${(churned.onDisk / churned.liveBytes).toFixed(2)}x)`,
  );
  fs.rmSync(root, { recursive: true, force: true });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});

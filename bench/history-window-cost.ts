/**
 * What the watch history window, and the checkpoints that bound a restart,
 * cost a write: CPU per Set in the file store, in process (no gRPC),
 * fsync=never, 64 writers (--writers) over --keys keys (default 1,000,
 * overwritten at random; more are written in full first), on the compiled
 * build (`npm run build` first: tsx's transpiled code pays for getters and
 * keepNames wrappers the build does not have). Each window size, and
 * optionally another checkout's build (--base DIR, e.g. one from before the
 * window existed), runs in a child process of its own, in alternating
 * rounds; the table gives the least and the median CPU per write over the
 * rounds (CPU time, not wall time: on a shared machine it moves far less
 * than throughput does).
 *
 * With --dead-only, each window size runs a second time with checkpoints set
 * off by dead bytes alone (compaction.logMinBytes out of reach), as before
 * the redesign: no checkpoint just because the logs since the last one grew
 * (the bound on a restart's replay), and so none that carries the window.
 *
 *   npx tsx bench/history-window-cost.ts [--sizes 100000,2000,1] [--rounds 5] [--seconds 2] [--base DIR]
 *     [--keys 1000] [--writers 64] [--dead-only]
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { openFileStore as OpenFileStore } from '../src/store/file';
import { REPO_ROOT } from './servers';

interface Result {
  opsPerSec: number;
  cpuMicrosPerOp: number;
}

interface Variant {
  maxChanges?: number;
  deadOnly: boolean;
  keys: number;
  writers: number;
}

/** The child: one store, writes for `seconds` after as long a warm-up; prints one Result. */
async function child(root: string, variant: Variant, seconds: number): Promise<void> {
  const { openFileStore } = (await import(path.join(root, 'dist/store/file/index.js'))) as { openFileStore: typeof OpenFileStore };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kv-window-cost-'));
  const feed = variant.maxChanges === undefined ? {} : { history: { maxChanges: variant.maxChanges } };
  const compaction = variant.deadOnly ? { logMinBytes: Number.MAX_SAFE_INTEGER } : {};
  const store = await openFileStore({ dataDir: dir, fsync: 'never', feed, compaction });
  const key = (i: number): string => `user/${String(i).padStart(9, '0')}`;
  if (variant.keys > 1000) {
    let filled = 0;
    await Promise.all(
      Array.from({ length: 256 }, async () => {
        while (filled < variant.keys) {
          const i = filled++;
          await store.set(key(i), { id: i, w: 0, pad: 'x'.repeat(70) });
        }
      }),
    );
  }
  let seed = 1;
  const next = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % variant.keys;
  const run = async (): Promise<Result> => {
    let count = 0;
    const cpu = process.cpuUsage();
    const start = performance.now();
    const deadline = start + seconds * 1000;
    await Promise.all(
      Array.from({ length: variant.writers }, async () => {
        while (performance.now() < deadline) {
          for (let j = 0; j < 16; j++) {
            const i = next();
            await store.set(key(i), { id: i, w: count, pad: 'x'.repeat(70) });
          }
          count += 16;
        }
      }),
    );
    const used = process.cpuUsage(cpu);
    return { opsPerSec: count / ((performance.now() - start) / 1000), cpuMicrosPerOp: (used.user + used.system) / count };
  };
  await run();
  const result = await run();
  await store.close();
  fs.rmSync(dir, { recursive: true, force: true });
  process.stdout.write(JSON.stringify(result));
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

function main(): void {
  const { values: flags } = parseArgs({
    options: {
      sizes: { type: 'string', default: '100000,2000,1' },
      rounds: { type: 'string', default: '5' },
      seconds: { type: 'string', default: '2' },
      base: { type: 'string' },
      keys: { type: 'string', default: '1000' },
      writers: { type: 'string', default: '64' },
      'dead-only': { type: 'boolean', default: false },
      child: { type: 'string' },
      variant: { type: 'string' },
    },
  });
  const seconds = Number(flags.seconds);
  const keys = Number(flags.keys);
  const writers = Number(flags.writers);
  if (flags.child !== undefined) {
    void child(flags.child, JSON.parse(flags.variant ?? '{}') as Variant, seconds);
    return;
  }
  const sides: Array<{ label: string; root: string; variant: Variant }> = [];
  for (const size of flags.sizes.split(',').map(Number)) {
    const label = `history window of ${size.toLocaleString('en-US')}`;
    sides.push({ label, root: REPO_ROOT, variant: { maxChanges: size, deadOnly: false, keys, writers } });
    if (flags['dead-only'])
      sides.push({
        label: `${label}, checkpoints by dead bytes only`,
        root: REPO_ROOT,
        variant: { maxChanges: size, deadOnly: true, keys, writers },
      });
  }
  if (flags.base !== undefined)
    sides.unshift({
      label: `base (${path.basename(path.resolve(flags.base))})`,
      root: path.resolve(flags.base),
      variant: { deadOnly: false, keys, writers },
    });
  const results = new Map<string, Result[]>(sides.map((side) => [side.label, []]));
  for (let round = 0; round < Number(flags.rounds); round++) {
    for (const side of sides) {
      const args = [
        '--import',
        'tsx',
        __filename,
        '--child',
        side.root,
        '--seconds',
        String(seconds),
        '--variant',
        JSON.stringify(side.variant),
      ];
      const out = execFileSync(process.execPath, args, { encoding: 'utf8', cwd: REPO_ROOT });
      results.get(side.label)?.push(JSON.parse(out) as Result);
    }
  }
  process.stdout.write(`${keys.toLocaleString('en-US')} keys, ${writers} writers\n\n`);
  process.stdout.write('| store | CPU µs per write (least) | (median) | writes/s (median) |\n|---|---:|---:|---:|\n');
  for (const [label, runs] of results) {
    const cpu = runs.map((r) => r.cpuMicrosPerOp);
    const least = Math.min(...cpu).toFixed(2);
    const mid = median(cpu).toFixed(2);
    const ops = Math.round(median(runs.map((r) => r.opsPerSec))).toLocaleString('en-US');
    process.stdout.write(`| ${label} | ${least} | ${mid} | ${ops} |\n`);
  }
}

main();

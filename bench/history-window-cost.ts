/**
 * What the watch history window costs a write: CPU per Set in the file
 * store, in process (no gRPC), fsync=never, 64 writers over 1,000 hot keys,
 * on the compiled build (`npm run build` first: tsx's transpiled code pays
 * for getters and keepNames wrappers the build does not have). Each window
 * size, and optionally another checkout's build (--base DIR, e.g. one from
 * before the window existed), runs in a child process of its own, in
 * alternating rounds; the table gives the least and the median CPU per write
 * over the rounds (CPU time, not wall time: on a shared machine it moves far
 * less than throughput does).
 *
 *   npx tsx bench/history-window-cost.ts [--sizes 100000,2000,1] [--rounds 5] [--seconds 2] [--base DIR]
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

/** The child: one store, writes for `seconds` after as long a warm-up; prints one Result. */
async function child(root: string, maxChanges: number | undefined, seconds: number): Promise<void> {
  const { openFileStore } = (await import(path.join(root, 'dist/store/file/index.js'))) as { openFileStore: typeof OpenFileStore };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kv-window-cost-'));
  const feed = maxChanges === undefined ? {} : { history: { maxChanges } };
  const store = await openFileStore({ dataDir: dir, fsync: 'never', feed });
  let seed = 1;
  const next = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % 1000;
  const run = async (): Promise<Result> => {
    let count = 0;
    const cpu = process.cpuUsage();
    const start = performance.now();
    const deadline = start + seconds * 1000;
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (performance.now() < deadline) {
          for (let j = 0; j < 16; j++) {
            const i = next();
            await store.set(`user/${String(i).padStart(9, '0')}`, { id: i, w: count, pad: 'x'.repeat(70) });
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
      child: { type: 'string' },
      'max-changes': { type: 'string' },
    },
  });
  const seconds = Number(flags.seconds);
  if (flags.child !== undefined) {
    const maxChanges = flags['max-changes'] === undefined ? undefined : Number(flags['max-changes']);
    void child(flags.child, maxChanges, seconds);
    return;
  }
  const sides: Array<{ label: string; root: string; maxChanges?: number }> = flags.sizes
    .split(',')
    .map((size) => ({ label: `history window of ${Number(size).toLocaleString('en-US')}`, root: REPO_ROOT, maxChanges: Number(size) }));
  if (flags.base !== undefined)
    sides.unshift({ label: `base (${path.basename(path.resolve(flags.base))})`, root: path.resolve(flags.base) });
  const results = new Map<string, Result[]>(sides.map((side) => [side.label, []]));
  for (let round = 0; round < Number(flags.rounds); round++) {
    for (const side of sides) {
      const args = ['--import', 'tsx', __filename, '--child', side.root, '--seconds', String(seconds)];
      if (side.maxChanges !== undefined) args.push('--max-changes', String(side.maxChanges));
      const out = execFileSync(process.execPath, args, { encoding: 'utf8', cwd: REPO_ROOT });
      results.get(side.label)?.push(JSON.parse(out) as Result);
    }
  }
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

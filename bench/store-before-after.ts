/**
 * `npm run bench:store` on two checkouts, alternating (base, new, base,
 * new, ...): the store engine in-process, before and after a change, with
 * nothing else of the bench running. Each run is the other checkout's own
 * bench/store.ts, started there, so each number is that commit's code.
 */
import { spawn } from 'node:child_process';
import { srcCommit } from './machine';
import { log } from './progress';
import type { Settings, StoreBenchRun } from './results';
import { REPO_ROOT } from './servers';

function runStoreBench(dir: string, sizes: number[], churn: number): Promise<string> {
  const args = ['--expose-gc', '--import', 'tsx', 'bench/store.ts', '--sizes', sizes.join(','), '--churn', String(churn)];
  const child = spawn(process.execPath, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`bench:store in ${dir} exited ${code}:\n${stderr}`))));
  });
}

/** bench/store.ts's table: | op | conc | N keys ... | ratio |, then a blank line and notes. */
export function parseStoreBench(output: string, sizes: number[]): { opsPerSec: Record<string, number>; notes: string[] } {
  const opsPerSec: Record<string, number> = {};
  const notes: string[] = [];
  for (const line of output.split('\n')) {
    if (line.startsWith('|')) {
      const cells = line
        .split('|')
        .slice(1, -1)
        .map((cell) => cell.trim());
      if (cells[0] === 'op' || cells[0].startsWith('-')) continue;
      sizes.forEach((size, index) => {
        opsPerSec[`${cells[0]}|${cells[1]}|${size}`] = Number(cells[2 + index].replace(/[,/s]/g, ''));
      });
    } else if (line.trim() !== '') notes.push(line.trim());
  }
  if (Object.keys(opsPerSec).length === 0) throw new Error(`bench:store printed no table:\n${output}`);
  return { opsPerSec, notes };
}

export async function runStoreBeforeAfter(settings: Settings): Promise<StoreBenchRun[]> {
  const store = settings.store;
  if (store === undefined) throw new Error('the store part needs --store-base');
  const sides = { base: store.baseDir, new: REPO_ROOT } as const;
  const churn = settings.quick ? 100_000 : 1_000_000;
  const runs: StoreBenchRun[] = [];
  let order = 0;
  for (let pass = 0; pass < store.runsEach; pass++) {
    for (const side of ['base', 'new'] as const) {
      const dir = sides[side];
      const commit = srcCommit(dir);
      log(`store: run ${order + 1} of ${2 * store.runsEach}: ${side} (${commit})`);
      const output = await runStoreBench(dir, store.sizes, churn);
      runs.push({ side, commit, order: order++, ...parseStoreBench(output, store.sizes) });
    }
  }
  return runs;
}

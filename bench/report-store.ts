/** The store-engine-before-and-after section of docs/benchmarks.md. */
import { int, ratio } from './report-format';
import type { BenchResults, StoreBenchRun } from './results';
import { summarize } from './stats';

export function storeSection(results: BenchResults): string[] {
  const runs = results.store;
  const store = results.settings.store;
  if (!runs || runs.length === 0 || !store) return [];
  const bySide = (side: StoreBenchRun['side']): StoreBenchRun[] => runs.filter((run) => run.side === side);
  const base = bySide('base');
  const after = bySide('new');
  const commits = (side: StoreBenchRun[]): string => [...new Set(side.map((run) => run.commit))].join(', ');
  const order = [...runs].sort((a, b) => a.order - b.order).map((run) => `${run.side} (${run.commit})`);
  const lines = [
    '## The store engine before and after the write-path redesign',
    '',
    `\`npm run bench:store -- --sizes ${store.sizes.join(',')}\` (the embedded file store in-process: no gRPC, no server), run from two checkouts one after the other with nothing else of the bench running: **base** is commit ${commits(base)}, the last before the write path became one \`Change\` value through decide → append → apply → publish → settle (69dfef1); **new** is ${commits(after)}, the code benchmarked here, which also carries everything merged since: the change feed and its history window (packed as it goes, and carried by every checkpoint), transactions and leases in decide, disk-error healing, and checkpoints that bound a restart's replay (which base never wrote at these sizes) with the key table they load into. Each run is that checkout's own code and its own bench/store.ts. Order: ${order.join(', ')}. ops/s per run in that order; "new / base" divides the medians. The spread between the two runs of the same side is this machine's noise: a change within it is no change.`,
    '',
    '| op | c | keys | base ops/s (each run) | new ops/s (each run) | new / base | base run-to-run spread |',
    '|---|---:|---:|---|---|---|---|',
  ];
  const keys = Object.keys(base[0]?.opsPerSec ?? {}).filter((key) => after.every((run) => key in run.opsPerSec));
  for (const key of keys) {
    const [op, concurrency, size] = key.split('|');
    const values = (side: StoreBenchRun[]): number[] => side.map((run) => run.opsPerSec[key]);
    const baseMedian = summarize(values(base)).median;
    const newMedian = summarize(values(after)).median;
    const baseSpread = summarize(values(base));
    const below = Math.max(...values(after)) < baseSpread.min * 0.9;
    lines.push(
      `| ${op} | ${concurrency} | ${int(Number(size))} | ${values(base).map(int).join(', ')} | ${values(after).map(int).join(', ')} | ${ratio(newMedian / baseMedian)}${below ? ' **below base**' : ''} | ${baseSpread.count > 1 ? ratio(baseSpread.max / baseSpread.min) : '–'} |`,
    );
  }
  lines.push(
    '',
    '**below base** marks a row where every new run was more than 10% under the slowest base run.',
    '',
    "Where a write's extra cost goes (the history window, the checkpoints that bound a restart's replay, the rest), measured apart with `bench/history-window-cost.ts`, and later runs of this table by hand (the newest after a large checkpoint's keys moved to a worker thread): [benchmarks-store.md](benchmarks-store.md).",
    '',
  );
  for (const [name, side] of [
    ['base', base],
    ['new', after],
  ] as const) {
    for (const run of side) lines.push(`- ${name} (${run.commit}), run ${run.order + 1}: ${run.notes.join('; ')}`);
  }
  lines.push('');
  return lines;
}

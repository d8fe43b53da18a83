/**
 * `npm run chaos`: the long form of test/chaos/chaos.test.ts. Several
 * histories, each on a fresh data directory with `--kills` SIGKILLs (24 in
 * all by default), each checked by chaos-check. A history that is not
 * linearizable (or whose check timed out) is kept and named, and the run
 * exits 1; docs/operations.md says how to read one.
 *
 *   npm run chaos -- [--histories 3] [--kills 8] [--keys 4] [--ts-clients 3] [--go-clients 3] [--workers N] [--out DIR] [--keep]
 *
 * --workers N runs kv-server --workers N, its kills taking turns at a worker, the store owner and every process.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { buildChaosTools, checkHistory, runChaos } from './chaos-harness';

function positiveInteger(name: string, text: string): number {
  if (!/^[1-9]\d*$/.test(text)) throw new Error(`--${name}: "${text}" is not a positive integer`);
  return Number(text);
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      histories: { type: 'string', default: '3' },
      kills: { type: 'string', default: '8' },
      keys: { type: 'string', default: '4' },
      'ts-clients': { type: 'string', default: '3' },
      'go-clients': { type: 'string', default: '3' },
      workers: { type: 'string' },
      out: { type: 'string' },
      keep: { type: 'boolean', default: false },
    },
  });
  const histories = positiveInteger('histories', values.histories);
  const kills = positiveInteger('kills', values.kills);
  const out = values.out ?? fs.mkdtempSync(path.join(os.tmpdir(), 'kv-chaos-'));
  fs.mkdirSync(out, { recursive: true });

  const started = Date.now();
  const tools = await buildChaosTools();
  const total = { calls: 0, operations: 0, kills: 0, lives: 0, indefinite: 0, checkMs: 0, checked: 0 };
  const failed: string[] = [];
  for (let n = 1; n <= histories; n++) {
    const historyDir = path.join(out, `history-${n}`);
    const run = await runChaos({
      tools,
      historyDir,
      kills,
      keys: positiveInteger('keys', values.keys),
      tsClients: positiveInteger('ts-clients', values['ts-clients']),
      goClients: positiveInteger('go-clients', values['go-clients']),
      workers: values.workers === undefined ? undefined : positiveInteger('workers', values.workers),
      log: (line) => process.stdout.write(`  ${line}\n`),
    });
    const { code, summary } = await checkHistory(tools, historyDir);
    total.checked++;
    total.calls += summary.records;
    total.operations += summary.operations;
    // The kills made, and the ones that ended the store's life (the checker's count: with --workers a worker's death
    // ends none, so it counts fewer).
    total.kills += run.kills;
    total.lives += summary.kills;
    total.indefinite += summary.indefinite_writes;
    total.checkMs += summary.check_ms;
    const verdict = code === 0 ? 'linearizable' : code === 2 ? 'UNKNOWN (the check timed out)' : 'NOT LINEARIZABLE';
    process.stdout.write(
      `history ${n}/${histories}: ${verdict}; ${summary.records} calls (${summary.operations} checked, ` +
        `${summary.indefinite_writes} writes without an answer), ${run.kills} kills (${summary.kills} ended the store), run ${run.seconds.toFixed(1)} s, ` +
        `checked in ${summary.check_ms.toFixed(1)} ms\n`,
    );
    for (const v of summary.revision_violations ?? []) process.stdout.write(`  ${v}\n`);
    if (code !== 0) {
      failed.push(historyDir);
      process.stdout.write(`  kept: ${historyDir}${summary.visualization ? ` (open ${summary.visualization})` : ''}\n`);
    } else if (!values.keep) {
      fs.rmSync(historyDir, { recursive: true, force: true });
    }
  }
  if (failed.length === 0 && !values.keep) fs.rmSync(out, { recursive: true, force: true });
  process.stdout.write(
    `\n${total.checked} histories checked, ${total.calls} calls (${total.operations} operations checked, ${total.indefinite} writes without an answer), ` +
      `${total.kills} SIGKILLs (${total.lives} ended the store), checker ${(total.checkMs / 1000).toFixed(2)} s in all; wall ${((Date.now() - started) / 1000).toFixed(0)} s\n`,
  );
  if (failed.length > 0) {
    process.stdout.write(`FAILED: ${failed.length} of ${total.checked} histories; kept in ${out}\n`);
    return 1;
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`chaos: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);

/**
 * What the watch history window alone costs a change: CPU per
 * `HistoryWindow.push` of one set (with its previous entry) into a window of
 * 100,000 changes that packs as the file store's does, on the compiled build
 * (`npm run build` first), against another checkout's build (--base DIR).
 * Each side runs in child processes of its own, alternating; a third child
 * only makes the changes, and its CPU per change is taken off both sides.
 * The table gives the least and the median over the rounds. Not a test.
 *
 *   npx tsx bench/window-push.ts --base DIR [--rounds 6] [--changes 1000000]
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { HistoryWindow as Window } from '../src/store/feed/history-window';
import type { packHistory as Pack } from '../src/store/file/packed-history';
import type { KeyChange, StoredEntry } from '../src/store/change';
import { REPO_ROOT } from './servers';
import { median } from './stats';

/** Sets over 1,000 keys of about 100-byte JSON values, each with its key's previous entry: the store bench's writes. */
function changeMaker(): () => KeyChange {
  let revision = 1;
  const latest = new Map<string, StoredEntry>();
  return () => {
    const k = (revision * 7919) % 1000;
    const key = `user/${String(k).padStart(9, '0')}`;
    const entry: StoredEntry = {
      valueJson: JSON.stringify({ id: k, w: revision, pad: 'x'.repeat(70) }),
      createRevision: 1,
      modRevision: revision,
      version: revision,
      lease: 0,
    };
    const change: KeyChange = { type: 'set', key, revision, entry, prev: latest.get(key) };
    latest.set(key, entry);
    revision++;
    return change;
  };
}

/** The child: pushes (or, with root '', only makes) `count` changes after a warm-up; prints CPU ns per change. */
async function child(root: string, count: number): Promise<void> {
  const make = changeMaker();
  let consume: (change: KeyChange) => void;
  if (root === '') {
    const sink: KeyChange[] = new Array<KeyChange>(1024);
    consume = (change) => {
      sink[change.revision & 1023] = change;
    };
  } else {
    const { HistoryWindow } = (await import(path.join(root, 'dist/store/feed/history-window.js'))) as { HistoryWindow: typeof Window };
    const { packHistory } = (await import(path.join(root, 'dist/store/file/packed-history.js'))) as { packHistory: typeof Pack };
    const window = new HistoryWindow({ maxChanges: 100_000, maxBytes: 64 * 1024 * 1024 }, 0);
    window.packWith(packHistory);
    consume = (change) => window.push([change]);
  }
  for (let i = 0; i < 300_000; i++) consume(make());
  const cpu = process.cpuUsage();
  for (let i = 0; i < count; i++) consume(make());
  const used = process.cpuUsage(cpu);
  process.stdout.write(String(((used.user + used.system) * 1000) / count));
}

function main(): void {
  const { values: flags } = parseArgs({
    options: {
      base: { type: 'string' },
      rounds: { type: 'string', default: '6' },
      changes: { type: 'string', default: '1000000' },
      child: { type: 'string' },
    },
  });
  if (flags.child !== undefined) {
    void child(flags.child, Number(flags.changes));
    return;
  }
  const sides = [{ label: 'this checkout', root: REPO_ROOT }];
  if (flags.base !== undefined)
    sides.unshift({ label: `base (${path.basename(path.resolve(flags.base))})`, root: path.resolve(flags.base) });
  const run = (root: string): number =>
    Number(
      execFileSync(process.execPath, ['--import', 'tsx', __filename, '--child', root, '--changes', flags.changes], {
        encoding: 'utf8',
        cwd: REPO_ROOT,
      }),
    );
  const making: number[] = [];
  const pushing = new Map<string, number[]>(sides.map((side) => [side.label, []]));
  for (let round = 0; round < Number(flags.rounds); round++) {
    making.push(run(''));
    for (const side of sides) pushing.get(side.label)?.push(run(side.root));
  }
  const made = median(making);
  process.stdout.write(`making a change alone: ${Math.round(Math.min(...making))} / ${Math.round(made)} ns (least / median)\n\n`);
  process.stdout.write('| window | CPU ns per push (least, less the least making) | (median, less the median making) |\n|---|---:|---:|\n');
  for (const [label, runs] of pushing) {
    process.stdout.write(`| ${label} | ${Math.round(Math.min(...runs) - Math.min(...making))} | ${Math.round(median(runs) - made)} |\n`);
  }
}

main();

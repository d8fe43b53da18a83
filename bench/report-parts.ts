/**
 * docs/benchmarks.md is written part by part: each part's section sits
 * between two markers and opens with the run it came from, so a run of some
 * parts (`--parts`, or `--render` of several saved runs) replaces their
 * sections and carries the others over from the report already there, each
 * still saying when, and at which commit, it was measured.
 */
import { plural } from './report-format';
import { PARTS, type BenchResults, type Part } from './results';

const START = /^<!-- bench part: ([a-z]+) -->$/;
const END = '<!-- bench part end -->';

/** The parts a run ran (results saved before there were parts held the comparison and the scale runs). */
export function partsOf(results: BenchResults): Part[] {
  const ran = results.settings.parts ?? ['compare', 'scale'];
  const hasData: Record<Part, boolean> = {
    compare: results.comparison.length > 0,
    scale: results.scaleStarts.length > 0,
    watch: results.watch !== undefined,
    txn: results.txn !== undefined,
    tls: results.tls !== undefined,
    engine: results.engine !== undefined,
    workers: results.workers !== undefined,
    store: (results.store ?? []).length > 0,
  };
  return ran.filter((part) => hasData[part]);
}

/** Which of `runs` measured each part: the latest run that has it. */
export function runsByPart(runs: readonly BenchResults[]): Partial<Record<Part, BenchResults>> {
  const byPart: Partial<Record<Part, BenchResults>> = {};
  for (const run of [...runs].sort((a, b) => a.startedAt.localeCompare(b.startedAt))) {
    for (const part of partsOf(run)) byPart[part] = run;
  }
  return byPart;
}

/** The line under a part's heading: which run, which commit, how loaded the machine was. */
function provenance(results: BenchResults, part: Part): string {
  const load = results.loadByPart?.[part];
  const { settings } = results;
  const timing = part === 'store' ? '' : `, ${plural(settings.rounds, 'round')} of about ${settings.durationSec} s per run`;
  return `_Measured by \`npm run bench\` on ${results.startedAt.slice(0, 16).replace('T', ' ')} UTC at kv ${results.versions.kv}${settings.quick ? ' with --quick (a smoke run, not for publishing)' : ''}${timing}${load !== undefined ? `; load average ${load.toFixed(1)} on ${results.machine.cpus} cores as it ended${load > results.machine.cpus ? ' (other work shared the machine)' : ''}` : ''}._`;
}

/** A part's section between its markers, its run's line under the heading. */
export function partBlock(part: Part, results: BenchResults, section: string[]): string[] {
  if (section.length === 0) return [];
  const [heading, ...rest] = section;
  return [`<!-- bench part: ${part} -->`, heading, '', provenance(results, part), ...rest, END, ''];
}

/** The sections of an existing report, by part, markers included, to carry over the parts not run again. */
export function readPartBlocks(markdown: string): Partial<Record<Part, string[]>> {
  const blocks: Partial<Record<Part, string[]>> = {};
  let current: { part: Part; lines: string[] } | undefined;
  for (const line of markdown.split('\n')) {
    const start = START.exec(line);
    if (start && (PARTS as readonly string[]).includes(start[1])) current = { part: start[1] as Part, lines: [line] };
    else if (current) {
      current.lines.push(line);
      if (line === END) {
        blocks[current.part] = [...current.lines, ''];
        current = undefined;
      }
    }
  }
  return blocks;
}

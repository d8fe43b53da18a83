/**
 * The short form of `npm run chaos`: a few SIGKILLs under load from
 * TypeScript and Go clients, and the history checked for linearizability by
 * porcupine. Then the checker is shown to reject what it must: the real
 * history doctored with a stale read, and small histories that break one
 * rule each.
 */
import fs from 'node:fs';
import path from 'node:path';
import { findTool } from '../support/find-tool';
import { makeTempDir } from '../support/temp-dirs';
import { type ChaosTools, buildChaosTools, checkHistory, runChaos } from './chaos-harness';

const BUILD_TIMEOUT_MS = 240_000;
const RUN_TIMEOUT_MS = 60_000;
// Well inside jest's own timeout, so a slow check fails as 'Unknown' instead of leaving the checker running.
const CHECK_TIMEOUT_MS = 20_000;

function goMissing(): string | undefined {
  try {
    return findTool('go') === undefined ? 'go is not on PATH (the chaos run needs Go for its Go clients and the checker)' : undefined;
  } catch (error) {
    return (error as Error).message; // KV_REQUIRE_ALL_CLIENTS=1: fail below instead of skipping
  }
}

const missing = goMissing();
if (missing !== undefined && process.env.KV_REQUIRE_ALL_CLIENTS !== '1') {
  process.stdout.write(`skipping the chaos tests: ${missing}\n`);
}
const chaosTest: jest.It = missing === undefined || process.env.KV_REQUIRE_ALL_CLIENTS === '1' ? test : test.skip;

let tools: ChaosTools;
let realHistory: string | undefined;
const dirs: string[] = [];

beforeAll(async () => {
  if (missing !== undefined) {
    if (process.env.KV_REQUIRE_ALL_CLIENTS === '1') throw new Error(missing);
    return;
  }
  tools = await buildChaosTools();
}, BUILD_TIMEOUT_MS);

afterAll(() => {
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

chaosTest(
  'SIGKILLed three times under load from TypeScript and Go clients, the history is linearizable',
  async () => {
    const historyDir = makeTempDir('kv-chaos-history-');
    const run = await runChaos({ tools, historyDir, kills: 3, upMs: [300, 900] });
    const { code, summary } = await checkHistory(tools, historyDir, CHECK_TIMEOUT_MS);
    // Kept (not removed in afterAll) if it fails, and named in the failure.
    expect({ historyDir, result: summary.result, revisionViolations: summary.revision_violations ?? [] }).toEqual({
      historyDir,
      result: 'Ok',
      revisionViolations: [],
    });
    expect(code).toBe(0);
    dirs.push(historyDir);
    realHistory = historyDir;
    expect(summary.kills).toBe(3);
    expect(summary.clients).toBe(6);
    // Both languages wrote, and the run was not all failures.
    const perClient = countByClientPrefix(historyDir);
    expect(perClient.ts).toBeGreaterThan(50);
    expect(perClient.go).toBeGreaterThan(50);
    expect((summary.by_status['set ok'] ?? 0) + (summary.by_status['get ok'] ?? 0)).toBeGreaterThan(100);
    // Txns in both branches: some compares held, some did not.
    const txns = [...readRecords(path.join(historyDir, 'ts.jsonl')), ...readRecords(path.join(historyDir, 'go.jsonl'))].filter(
      (r) => r.op === 'txn' && r.status === 'ok',
    );
    expect(txns.filter((r) => r.succeeded === true).length).toBeGreaterThan(0);
    expect(txns.filter((r) => r.succeeded === false).length).toBeGreaterThan(0);
    process.stdout.write(
      `chaos short form: ${summary.records} calls (${txns.length} txns answered), ${summary.kills} kills, ${summary.indefinite_writes} writes without an answer, ` +
        `checked in ${summary.check_ms} ms; run ${run.seconds} s\n`,
    );
  },
  RUN_TIMEOUT_MS,
);

chaosTest(
  'kv-server --workers 2: a worker, the store owner and every process SIGKILLed under load, the history is linearizable',
  async () => {
    const historyDir = makeTempDir('kv-chaos-workers-history-');
    const run = await runChaos({ tools, historyDir, kills: 3, upMs: [300, 900], workers: 2 });
    const { code, summary } = await checkHistory(tools, historyDir, CHECK_TIMEOUT_MS);
    expect({ historyDir, result: summary.result, revisionViolations: summary.revision_violations ?? [] }).toEqual({
      historyDir,
      result: 'Ok',
      revisionViolations: [],
    });
    expect(code).toBe(0);
    dirs.push(historyDir);
    // The owner's deaths: killed alone, then with every other process (a worker's death ends no owner life).
    expect(summary.kills).toBe(2);
    expect((summary.by_status['set ok'] ?? 0) + (summary.by_status['get ok'] ?? 0)).toBeGreaterThan(100);
    process.stdout.write(
      `chaos short form, --workers 2: ${summary.records} calls, ${summary.indefinite_writes} writes without an answer, ` +
        `checked in ${summary.check_ms} ms; run ${run.seconds} s\n`,
    );
  },
  RUN_TIMEOUT_MS,
);

function countByClientPrefix(dir: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const name of ['ts.jsonl', 'go.jsonl']) {
    counts[name.split('.')[0]] = readRecords(path.join(dir, name)).length;
  }
  return counts;
}

type ChaosRecord = Record<string, unknown> & { client: string; op: string; key: string; call: bigint; return: bigint; status: string };

/** Reads a history file, keeping the nanosecond times exact (they can pass 2^53). */
function readRecords(file: string): ChaosRecord[] {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const r = JSON.parse(l.replace(/"(call|return)":(\d+)/g, '"$1":"$2"'));
      return { ...r, call: BigInt(r.call), return: BigInt(r.return) } as ChaosRecord;
    });
}

function writeRecords(file: string, records: Array<Record<string, unknown>>): void {
  fs.writeFileSync(
    file,
    records
      .map(
        (r) =>
          `${JSON.stringify({ ...r, call: String(r.call), return: String(r.return) }).replace(/"(call|return)":"(\d+)"/g, '"$1":$2')}\n`,
      )
      .join(''),
  );
}

chaosTest('the checker rejects the real history doctored with one stale read', async () => {
  if (realHistory === undefined) throw new Error('needs the history of the chaos run above, which failed');
  const doctored = makeTempDir('kv-chaos-doctored-');
  dirs.push(doctored);
  for (const name of fs.readdirSync(realHistory)) fs.copyFileSync(path.join(realHistory, name), path.join(doctored, name));
  const records = [...readRecords(path.join(doctored, 'ts.jsonl')), ...readRecords(path.join(doctored, 'go.jsonl'))];
  // An acknowledged set that a later acknowledged set of the same key overwrote, for certain (no overlap).
  const sets = records.filter((r) => r.op === 'set' && r.status === 'ok');
  const overwritten = sets.find((a) => sets.some((b) => b.key === a.key && b.call > a.return));
  if (overwritten === undefined) throw new Error('the run had no overwritten set to doctor');
  const end = records.reduce((max, r) => (r.return > max ? r.return : max), 0n);
  writeRecords(path.join(doctored, 'doctor.jsonl'), [
    {
      client: 'doctor',
      op: 'get',
      key: overwritten.key,
      call: end + 1_000_000n,
      return: end + 2_000_000n,
      status: 'ok',
      found: overwritten.value,
      mod_revision: overwritten.revision,
    },
  ]);
  // After the final stop: no server instance was alive, but the checker does not need one to judge a read.
  const { code, summary } = await checkHistory(tools, doctored, CHECK_TIMEOUT_MS);
  expect(summary.result).toBe('Illegal');
  expect(code).toBe(1);
  expect(summary.visualization).toBe(path.join(doctored, 'linearizability.html'));
  expect(fs.readFileSync(summary.visualization!, 'utf8')).toContain('doctor');
});

/** A history of one client file and server events; times in ms for readability (the checker only compares them). */
function history(events: Array<[string, number]>, records: Array<Record<string, unknown>>): string {
  const dir = makeTempDir('kv-chaos-case-');
  dirs.push(dir);
  let pid = 100;
  fs.writeFileSync(
    path.join(dir, 'server.jsonl'),
    events.map(([event, at]) => `${JSON.stringify({ event, pid: event === 'spawn' ? ++pid : pid, at: at * 1_000_000 })}\n`).join(''),
  );
  writeRecords(
    path.join(dir, 'case.jsonl'),
    records.map((r) => ({
      client: 'c',
      ...r,
      call: BigInt(r.call as number) * 1_000_000n,
      return: BigInt(r.return as number) * 1_000_000n,
    })),
  );
  return dir;
}

const oneLife: Array<[string, number]> = [
  ['spawn', 0],
  ['stop', 1000],
];
const killedAt30: Array<[string, number]> = [
  ['spawn', 0],
  ['kill', 30],
  ['spawn', 31],
  ['stop', 1000],
];

describe('the checker: one rule broken at a time', () => {
  // [what, server events, records, porcupine's result, whether revisions respect real time]
  chaosTest.each<[string, Array<[string, number]>, Array<Record<string, unknown>>, 'Ok' | 'Illegal', boolean]>([
    [
      'a stale read: a value read after it was overwritten',
      oneLife,
      [
        { op: 'set', key: 'k', value: 'a', call: 10, return: 20, status: 'ok', revision: 1 },
        { op: 'set', key: 'k', value: 'b', call: 30, return: 40, status: 'ok', revision: 2 },
        { op: 'get', key: 'k', call: 50, return: 60, status: 'ok', found: 'a', mod_revision: 1 },
      ],
      'Illegal',
      true,
    ],
    [
      'an acknowledged write lost across a SIGKILL',
      killedAt30,
      [
        { op: 'set', key: 'k', value: 'a', call: 10, return: 20, status: 'ok', revision: 1 },
        { op: 'get', key: 'k', call: 40, return: 50, status: 'not_found' },
      ],
      'Illegal',
      true,
    ],
    [
      'a write with no answer, seen after the restart: it may have happened',
      killedAt30,
      [
        { op: 'set', key: 'k', value: 'a', call: 10, return: 25, status: 'indefinite', error: 'UNAVAILABLE' },
        { op: 'get', key: 'k', call: 40, return: 50, status: 'ok', found: 'a', mod_revision: 1 },
      ],
      'Ok',
      true,
    ],
    [
      'a write with no answer, never seen: it may not have happened',
      killedAt30,
      [
        { op: 'set', key: 'k', value: 'a', call: 10, return: 25, status: 'indefinite', error: 'UNAVAILABLE' },
        { op: 'get', key: 'k', call: 40, return: 50, status: 'not_found' },
      ],
      'Ok',
      true,
    ],
    [
      'a write with no answer cannot take effect after the server that got it died',
      killedAt30,
      [
        { op: 'set', key: 'k', value: 'a', call: 10, return: 25, status: 'indefinite', error: 'UNAVAILABLE' },
        { op: 'get', key: 'k', call: 40, return: 50, status: 'not_found' },
        { op: 'get', key: 'k', call: 60, return: 70, status: 'ok', found: 'a', mod_revision: 1 },
      ],
      'Illegal',
      true,
    ],
    [
      'a compare-and-set that won against a revision the key did not have',
      oneLife,
      [
        { op: 'set', key: 'k', value: 'a', call: 10, return: 20, status: 'ok', revision: 1 },
        { op: 'set', key: 'k', value: 'b', expected: 5, call: 30, return: 40, status: 'ok', revision: 2 },
      ],
      'Illegal',
      true,
    ],
    [
      'an ABORTED naming a current revision the key did not have',
      oneLife,
      [
        { op: 'set', key: 'k', value: 'a', call: 10, return: 20, status: 'ok', revision: 1 },
        { op: 'delete', key: 'k', expected: 5, call: 30, return: 40, status: 'aborted', current_revision: 7 },
      ],
      'Illegal',
      true,
    ],
    [
      'revisions going back across a restart (each key alone looks fine)',
      killedAt30,
      [
        { op: 'set', key: 'k0', value: 'a', call: 10, return: 20, status: 'ok', revision: 5 },
        { op: 'set', key: 'k1', value: 'b', call: 40, return: 50, status: 'ok', revision: 3 },
      ],
      'Ok',
      false,
    ],
    [
      'two changes given one revision',
      oneLife,
      [
        { op: 'set', key: 'k0', value: 'a', call: 10, return: 20, status: 'ok', revision: 4 },
        { op: 'set', key: 'k1', value: 'b', call: 15, return: 25, status: 'ok', revision: 4 },
      ],
      'Ok',
      false,
    ],
    [
      'a txn whose compare held against a revision the key did not have',
      oneLife,
      [
        { op: 'set', key: 'k', value: 'a', call: 10, return: 20, status: 'ok', revision: 1 },
        { op: 'txn', key: 'k', value: 'b', expected: 5, call: 30, return: 40, status: 'ok', succeeded: true, revision: 2 },
      ],
      'Illegal',
      true,
    ],
    [
      "a txn's failure branch reading a value the key no longer had",
      oneLife,
      [
        { op: 'set', key: 'k', value: 'a', call: 10, return: 20, status: 'ok', revision: 1 },
        { op: 'set', key: 'k', value: 'b', call: 30, return: 40, status: 'ok', revision: 2 },
        {
          op: 'txn',
          key: 'k',
          value: 'c',
          expected: 7,
          call: 50,
          return: 60,
          status: 'ok',
          succeeded: false,
          revision: 2,
          found: 'a',
          mod_revision: 1,
        },
      ],
      'Illegal',
      true,
    ],
    [
      'a txn that failed its compare although the key had the expected revision',
      oneLife,
      [
        { op: 'set', key: 'k', value: 'a', call: 10, return: 20, status: 'ok', revision: 1 },
        {
          op: 'txn',
          key: 'k',
          value: 'b',
          expected: 1,
          call: 30,
          return: 40,
          status: 'ok',
          succeeded: false,
          revision: 1,
          found: 'a',
          mod_revision: 1,
        },
      ],
      'Illegal',
      true,
    ],
    [
      'concurrent txns on one revision: one sets, the other reads what it set; a txn with no answer may have happened',
      killedAt30,
      [
        { op: 'txn', key: 'k', value: 'a', expected: 0, call: 5, return: 8, status: 'ok', succeeded: true, revision: 1 },
        { op: 'txn', key: 'k', value: 'b', expected: 1, call: 10, return: 20, status: 'ok', succeeded: true, revision: 2 },
        {
          op: 'txn',
          key: 'k',
          value: 'c',
          expected: 1,
          call: 11,
          return: 19,
          status: 'ok',
          succeeded: false,
          revision: 2,
          found: 'b',
          mod_revision: 2,
        },
        { op: 'txn', key: 'k', value: 'd', expected: 2, call: 21, return: 29, status: 'indefinite', error: 'UNAVAILABLE' },
        { op: 'get', key: 'k', call: 40, return: 50, status: 'ok', found: 'd', mod_revision: 4 },
        {
          op: 'txn',
          key: 'k',
          value: 'e',
          expected: 9,
          call: 60,
          return: 70,
          status: 'ok',
          succeeded: false,
          revision: 4,
          found: 'd',
          mod_revision: 4,
        },
      ],
      'Ok',
      true,
    ],
    [
      'concurrent compare-and-sets, one wins and the loser names the winner',
      oneLife,
      [
        { op: 'set', key: 'k', value: 'a', call: 10, return: 20, status: 'ok', revision: 1 },
        { op: 'set', key: 'k', value: 'b', expected: 1, call: 30, return: 50, status: 'ok', revision: 2 },
        { op: 'set', key: 'k', value: 'c', expected: 1, call: 31, return: 49, status: 'aborted', current_revision: 2 },
        { op: 'delete', key: 'k', call: 60, return: 70, status: 'ok', deleted: true, revision: 3 },
        { op: 'delete', key: 'k', expected: 0, call: 80, return: 90, status: 'ok', deleted: false, revision: 3 },
      ],
      'Ok',
      true,
    ],
  ])('%s', async (_name, events, records, result, revisionsInOrder) => {
    const dir = history(events, records);
    const { code, summary } = await checkHistory(tools, dir, CHECK_TIMEOUT_MS);
    expect({ result: summary.result, revisionsInOrder: (summary.revision_violations ?? []).length === 0 }).toEqual({
      result,
      revisionsInOrder,
    });
    expect(summary.linearizable).toBe(result === 'Ok' && revisionsInOrder);
    expect(code).toBe(summary.linearizable ? 0 : 1);
  });
});

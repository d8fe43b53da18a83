/** -o table (the default on a terminal): never writes a key's or value's control characters raw (they could drive the terminal), and lines its columns up as a terminal shows them. */
import { KvClient } from '@kv/client';
import { runKvctl, type KvctlResult } from '../support/kvctl-process';
import { startServer, type RunningServer } from '../support/server-process';

let server: RunningServer;
let kv: KvClient;

beforeAll(async () => {
  server = await startServer();
  kv = new KvClient(server.address);
});

afterAll(async () => {
  kv.close();
  await server.stop();
});

const kvctl = (args: string[]): Promise<KvctlResult> => runKvctl(['-o', 'table', ...args], { env: { KV_ENDPOINTS: server.address } });

/** Nothing a terminal would act on: no C0 but the line feeds, no DEL, no C1 (\u009b is a one-byte CSI). */
// eslint-disable-next-line no-control-regex -- control characters are what it looks for
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;

test('keys and values with ESC, CSI and BEL are shown escaped in ls, get and watch', async () => {
  const key = 'esc/\u001b]0;pwned\u0007\u009b2J';
  const revision = await kv.set(key, 'red \u001b[31m text \u009b1m');
  const ls = await kvctl(['ls', 'esc/']);
  expect(ls.code).toBe(0);
  expect(ls.stdout).not.toMatch(RAW_CONTROL);
  expect(ls.stdout).toContain('esc/\\u001b]0;pwned\\u0007\\u009b2J');
  const get = await kvctl(['get', key]);
  expect(get.code).toBe(0);
  expect(get.stdout).not.toMatch(RAW_CONTROL);
  expect(get.stdout).toContain('\\u009b1m');
  const watch = await kvctl(['watch', '--prefix', 'esc/', '--rev', String(revision), '--count', '1']);
  expect(watch.code).toBe(0);
  expect(watch.stdout).not.toMatch(RAW_CONTROL);
  expect(watch.stdout).toContain('esc/\\u001b]0;pwned\\u0007\\u009b2J');
});

/** Columns a terminal gives the characters of the test below: CJK and emoji two, a combining accent none. */
function terminalColumns(text: string): number {
  return [...text].reduce((sum, char) => sum + (/[\u3000-\u9fff\u{1f300}-\u{1faff}]/u.test(char) ? 2 : /\p{M}/u.test(char) ? 0 : 1), 0);
}

test('table columns line up on a terminal when keys hold CJK, emoji or combining accents', async () => {
  await kv.set('wide/日本語', '値');
  await kv.set('wide/👍', 'ok');
  await kv.set('wide/cafe\u0301', 'accent');
  await kv.set('wide/plain', 'ascii');
  const get = await kvctl(['get', '--prefix', 'wide/']);
  expect(get.code).toBe(0);
  const lines = get.stdout.trimEnd().split('\n');
  expect(lines).toHaveLength(5);
  // Where the second column (VERSION) starts, in terminal columns: the same on every line.
  const starts = lines.map((line) => {
    const [, first, gap] = /^(\S+)( +)/.exec(line)!;
    return terminalColumns(first) + gap.length;
  });
  expect(new Set(starts)).toEqual(new Set([terminalColumns('wide/日本語') + 2]));
});

test('watch --prev on a terminal shows each previous value (a delete, what it deleted)', async () => {
  const first = await kv.set('prev/a', 1);
  await kv.set('prev/a', 2);
  await kv.delete('prev/a');
  const watch = await kvctl(['watch', 'prev/a', '--prev', '--rev', String(first), '--count', '3']);
  expect(watch.code).toBe(0);
  const lines = watch.stdout.trimEnd().split('\n');
  expect(lines).toHaveLength(3);
  expect(lines[0]).toMatch(/^PUT +prev\/a +\d+ +1 +\(none\)$/);
  expect(lines[1]).toMatch(/^PUT +prev\/a +\d+ +2 +was 1$/);
  expect(lines[2]).toMatch(/^DELETE +prev\/a +\d+ +was 2$/);
});

test('watch --prev as JSON: the previous entry as get shows an entry, so a key deleted with its lease names the lease', async () => {
  const lease = await kv.grantLease(60_000);
  const first = await kv.set('prevjson/a', 1, { lease: lease.id });
  await kv.set('prevjson/a', 2, { lease: lease.id });
  await kv.revokeLease(lease.id);
  const watch = await runKvctl(['-o', 'json', 'watch', 'prevjson/a', '--prev', '--rev', String(first), '--count', '3'], {
    env: { KV_ENDPOINTS: server.address },
  });
  expect(watch.code).toBe(0);
  const events = watch.stdout
    .trimEnd()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  expect(events.map((e) => e.prev)).toEqual([
    undefined,
    { value: 1, createRevision: first, modRevision: first, version: 1, lease: lease.id },
    { value: 2, createRevision: first, modRevision: first + 1, version: 2, lease: lease.id },
  ]);
  expect(events[2]).toMatchObject({ type: 'delete', key: 'prevjson/a' });
});

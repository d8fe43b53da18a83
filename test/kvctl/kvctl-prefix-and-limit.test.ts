/** kvctl get --prefix P (entries with values, like etcdctl get --prefix) and --limit N on get --prefix and ls. */
import { KvClient } from '@kv/client';
import { runKvctl, type KvctlResult } from '../support/kvctl-process';
import { startServer, type RunningServer } from '../support/server-process';

let server: RunningServer;
let kv: KvClient;
/** More keys than a page (1000), so "every page" is tested. */
const COUNT = 1003;
const key = (i: number): string => `p/${String(i).padStart(4, '0')}`;

beforeAll(async () => {
  server = await startServer();
  kv = new KvClient(server.address);
  for (let i = 0; i < COUNT; i++) await kv.set(key(i), { i });
  await kv.set('q/other', 'not under p/');
}, 60_000);

afterAll(async () => {
  kv.close();
  await server.stop();
});

const kvctl = (args: string[]): Promise<KvctlResult> => runKvctl(args, { env: { KV_ENDPOINTS: server.address } });

function expectUsageError(result: KvctlResult, pattern: RegExp): void {
  expect({ code: result.code, stdout: result.stdout }).toEqual({ code: 2, stdout: '' });
  expect(result.stderr).toMatch(/^kvctl: [^\n]+\n$/);
  expect(result.stderr).toMatch(pattern);
}

describe('get --prefix', () => {
  test('every entry under the prefix, every page, in key order, each as get prints one', async () => {
    const result = await kvctl(['get', '--prefix', 'p/']);
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
    const entries = JSON.parse(result.stdout) as { key: string; value: unknown }[];
    expect(entries).toHaveLength(COUNT);
    expect(entries.map((e) => e.key)).toEqual(Array.from({ length: COUNT }, (_, i) => key(i)));
    const first = await kv.get(key(0));
    expect(entries[0]).toEqual({
      key: key(0),
      value: { i: 0 },
      createRevision: first!.createRevision,
      modRevision: first!.modRevision,
      version: 1,
    });
  });

  test('--limit N: the first N; -o value: the bare values; -o table: the get columns; nothing under it: []', async () => {
    expect(await kvctl(['get', '--prefix', 'p/', '--limit', '2', '-o', 'value'])).toEqual({
      code: 0,
      stdout: '{"i":0}\n{"i":1}\n',
      stderr: '',
    });
    const table = await kvctl(['get', '--prefix', 'q/', '-o', 'table']);
    expect(table.stdout).toMatch(/^KEY +VERSION +CREATE_REVISION +MOD_REVISION +LEASE +VALUE\nq\/other +1 +\d+ +\d+ +"not under p\/"\n$/);
    expect(await kvctl(['get', '--prefix', 'none/'])).toEqual({ code: 0, stdout: '[]\n', stderr: '' });
  });

  test('a KEY and --prefix, neither, or --limit without --prefix: a usage error, one line', async () => {
    expectUsageError(await kvctl(['get', 'p/0000', '--prefix', 'p/']), /KEY or --prefix, not both/);
    expectUsageError(await kvctl(['get']), /needs a KEY, or --prefix/);
    expectUsageError(await kvctl(['get', 'p/0000', '--limit', '1']), /--limit goes with --prefix/);
    expectUsageError(await kvctl(['get', '--prefix', 'p/', '--limit', '0']), /--limit/);
  });
});

describe('ls --limit', () => {
  test('the first N keys; without it every page', async () => {
    expect(await kvctl(['ls', 'p/', '--limit', '3', '-o', 'value'])).toEqual({
      code: 0,
      stdout: `${key(0)}\n${key(1)}\n${key(2)}\n`,
      stderr: '',
    });
    expect(JSON.parse((await kvctl(['ls', '--limit', '1'])).stdout)).toEqual([key(0)]);
    expect(JSON.parse((await kvctl(['ls', 'p/'])).stdout)).toHaveLength(COUNT);
    expectUsageError(await kvctl(['ls', '--limit', 'ten']), /--limit/);
  });
});

describe('get --prefix --print-revision', () => {
  test('says on stderr the revision the listing was read at (stdout as without it); a watch from it + 1 misses nothing after', async () => {
    const listed = await kv.set('r/a', 1);
    const plain = await kvctl(['get', '--prefix', 'p/']);
    const result = await kvctl(['get', '--prefix', 'p/', '--print-revision']);
    expect(result).toEqual({ code: 0, stdout: plain.stdout, stderr: `kvctl: listed at revision ${listed}\n` });
    for (const output of ['value', 'table']) {
      const other = await kvctl(['get', '--prefix', 'r/', '--print-revision', '-o', output]);
      expect({ output, code: other.code, stderr: other.stderr }).toEqual({
        output,
        code: 0,
        stderr: `kvctl: listed at revision ${listed}\n`,
      });
    }
    // The exit-5 advice of watch: list again, then watch from the listing's revision + 1.
    const next = await kv.set('r/b', 2);
    const watch = await kvctl(['watch', '--prefix', 'r/', '--rev', String(listed + 1), '--count', '1']);
    expect({
      code: watch.code,
      events: watch.stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line)),
    }).toEqual({
      code: 0,
      events: [expect.objectContaining({ type: 'put', key: 'r/b', revision: next })],
    });
  });

  test('an empty listing has a revision too; with a KEY it is a usage error', async () => {
    const now = await kv.set('s/x', 0);
    expect(await kvctl(['get', '--prefix', 'none/', '--print-revision'])).toEqual({
      code: 0,
      stdout: '[]\n',
      stderr: `kvctl: listed at revision ${now}\n`,
    });
    expectUsageError(await kvctl(['get', 's/x', '--print-revision']), /--print-revision goes with --prefix/);
  });
});

describe('ls --print-revision', () => {
  test('says on stderr the revision the first page was read at (stdout as without it); a watch from it + 1 misses nothing after', async () => {
    const listed = await kv.set('l/a', 1);
    const plain = await kvctl(['ls', 'l/']);
    expect(JSON.parse(plain.stdout)).toEqual(['l/a']);
    expect(await kvctl(['ls', 'l/', '--print-revision'])).toEqual({
      code: 0,
      stdout: plain.stdout,
      stderr: `kvctl: listed at revision ${listed}\n`,
    });
    // Paged (one key a page, --limit): still the first page's revision.
    const paged = await kvctl(['ls', '--limit', '1', '--print-revision', '-o', 'value']);
    expect({ code: paged.code, lines: paged.stdout.split('\n').length, stderr: paged.stderr }).toEqual({
      code: 0,
      lines: 2,
      stderr: `kvctl: listed at revision ${listed}\n`,
    });
    expect((await kvctl(['ls', 'none/', '--print-revision'])).stderr).toBe(`kvctl: listed at revision ${listed}\n`);
    const next = await kv.set('l/b', 2);
    const watch = await kvctl(['watch', '--prefix', 'l/', '--rev', String(listed + 1), '--count', '1']);
    expect({ code: watch.code, event: JSON.parse(watch.stdout) }).toEqual({
      code: 0,
      event: expect.objectContaining({ type: 'put', key: 'l/b', revision: next }),
    });
  });
});

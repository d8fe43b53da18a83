import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { KvClient } from '@kv/client';
import { testWithTool } from '../support/find-tool';
import { KVCTL_SHELL, runCommand, runKvctl, type KvctlResult } from '../support/kvctl-process';
import { REPO_ROOT, startServer, type RunningServer } from '../support/server-process';
import { makeTempDir } from '../support/temp-dirs';

/** kvctl as a user runs it: a child process against a real server, stdout a pipe (so JSON) unless a test gives it a terminal. */
let server: RunningServer;
let kv: KvClient;
let scratch: string;

beforeAll(async () => {
  server = await startServer();
  kv = new KvClient(server.address);
  scratch = makeTempDir('kvctl-test-');
});

afterAll(async () => {
  kv.close();
  await server.stop();
  rmSync(scratch, { recursive: true, force: true });
});

const kvctl = (args: string[], options: { input?: string; env?: Record<string, string> } = {}): Promise<KvctlResult> =>
  runKvctl(args, { ...options, env: { KV_ENDPOINTS: server.address, ...options.env } });

/** A failure is one line on stderr, never a stack trace, and nothing on stdout. */
function expectOneLineError(result: KvctlResult, code: number, pattern: RegExp): void {
  expect({ code: result.code, stdout: result.stdout }).toEqual({ code, stdout: '' });
  expect(result.stderr).toMatch(/^kvctl: [^\n]+\n$/);
  expect(result.stderr).toMatch(pattern);
}

describe('reading and writing', () => {
  test('set then get: the entry as JSON when piped, the bare value with -o value', async () => {
    const set = await kvctl(['set', 'rw/ada', '{"name": "Ada", "langs": ["en", "fr"], "admin": true}']);
    expect(set.code).toBe(0);
    const { revision } = JSON.parse(set.stdout);
    expect(revision).toBeGreaterThan(0);

    const get = await kvctl(['get', 'rw/ada']);
    expect(get.code).toBe(0);
    expect(JSON.parse(get.stdout)).toEqual({
      key: 'rw/ada',
      value: { name: 'Ada', langs: ['en', 'fr'], admin: true },
      createRevision: revision,
      modRevision: revision,
      version: 1,
    });
    expect((await kvctl(['get', 'rw/ada', '-o', 'value'])).stdout).toBe('{"name":"Ada","langs":["en","fr"],"admin":true}\n');
  });

  test('-o value prints a string without quotes and anything else as JSON', async () => {
    await kv.set('rw/string', 'héllo "world"');
    await kv.set('rw/null', null);
    expect((await kvctl(['get', 'rw/string', '-o', 'value'])).stdout).toBe('héllo "world"\n');
    expect((await kvctl(['-o', 'value', 'get', 'rw/null'])).stdout).toBe('null\n');
  });

  test('set takes the value from @FILE, from stdin with -, and from stdin when it is left out', async () => {
    const file = path.join(scratch, 'value.json');
    writeFileSync(file, '{"from": "file"}\n');
    expect((await kvctl(['set', 'rw/file', `@${file}`])).code).toBe(0);
    expect((await kvctl(['set', 'rw/dash', '-'], { input: '["from", "stdin"]' })).code).toBe(0);
    expect((await kvctl(['set', 'rw/piped'], { input: '42' })).code).toBe(0);
    expect((await kv.get('rw/file'))?.value).toEqual({ from: 'file' });
    expect((await kv.get('rw/dash'))?.value).toEqual(['from', 'stdin']);
    expect((await kv.get('rw/piped'))?.value).toBe(42);
  });

  test('a value that is not JSON is a usage error (exit 2) and nothing is stored', async () => {
    expectOneLineError(await kvctl(['set', 'rw/bad', 'Ada']), 2, /the value is not JSON.*'"text"'/);
    expectOneLineError(await kvctl(['set', 'rw/bad', `@${path.join(scratch, 'missing.json')}`]), 2, /cannot read .*missing\.json/);
    expectOneLineError(await kvctl(['set', 'rw/bad'], { input: '{"a":' }), 2, /stdin is not JSON/);
    // Nothing at all is said to be nothing, not "Unexpected end of JSON input".
    expectOneLineError(await kvctl(['set', 'rw/bad'], { input: '' }), 2, /^kvctl: no value: stdin was empty; give the value as JSON/);
    expectOneLineError(await kvctl(['update', 'rw/bad'], { input: ' \n' }), 2, /^kvctl: no patch: stdin was empty; give the patch as JSON/);
    expectOneLineError(await kvctl(['set', 'rw/bad', '']), 2, /^kvctl: the value is empty; give the value as JSON/);
    writeFileSync(path.join(scratch, 'empty.json'), '');
    expectOneLineError(await kvctl(['set', 'rw/bad', `@${path.join(scratch, 'empty.json')}`]), 2, /empty\.json is empty/);
    expect(await kv.get('rw/bad')).toBeUndefined();
  });

  test('get of a missing key exits 1 with one line naming the key', async () => {
    expectOneLineError(await kvctl(['get', 'rw/missing']), 1, /key "rw\/missing" not found/);
  });

  test('--expected-revision: a matching revision writes, a stale one exits 3 naming the current revision', async () => {
    const revision = await kv.set('rw/cas', 1);
    const won = await kvctl(['set', 'rw/cas', '2', '--expected-revision', String(revision)]);
    expect(won.code).toBe(0);
    const current = JSON.parse(won.stdout).revision;
    expectOneLineError(
      await kvctl(['set', 'rw/cas', '3', '--expected-revision', String(revision)]),
      3,
      new RegExp(`current mod_revision is ${current} \\(REVISION_MISMATCH\\)`),
    );
    expectOneLineError(await kvctl(['set', 'rw/cas', '4', '--expected-revision', '0']), 3, /REVISION_MISMATCH/);
    expectOneLineError(await kvctl(['del', 'rw/cas', '--expected-revision', String(revision)]), 3, /REVISION_MISMATCH/);
    expectOneLineError(await kvctl(['set', 'rw/cas', '5', '--expected-revision', 'latest']), 2, /--expected-revision: "latest"/);
    expect((await kv.get('rw/cas'))?.value).toBe(2);
  });

  test('del says whether the key existed; a missing key is not an error', async () => {
    await kv.set('rw/del', true);
    expect(JSON.parse((await kvctl(['del', 'rw/del'])).stdout)).toEqual({ key: 'rw/del', deleted: true });
    const again = await kvctl(['del', 'rw/del', '-o', 'value']);
    expect({ code: again.code, stdout: again.stdout }).toEqual({ code: 0, stdout: 'false\n' });
  });

  test('a key the server refuses exits 5 with its reason', async () => {
    expectOneLineError(await kvctl(['set', 'x'.repeat(5000), '1']), 5, /is 5000 bytes .*\(TOO_LARGE\)/);
  });

  test('--ttl-ms 0, --lease 0 and watch --rev 0 are usage errors (0 means "none" on the wire); --expected-revision 0 is kept', async () => {
    expectOneLineError(
      await kvctl(['set', 'rw/ttl0', '1', '--ttl-ms', '0']),
      2,
      /^kvctl: --ttl-ms: "0" is not a whole number >= 1 \(.*1 ms/,
    );
    expectOneLineError(
      await kvctl(['set', 'rw/lease0', '1', '--lease', '0']),
      2,
      /^kvctl: --lease: "0" is not a whole number >= 1 \(.*lease id/,
    );
    expectOneLineError(await kvctl(['watch', 'rw/ttl0', '--rev', '0']), 2, /^kvctl: --rev: "0" is not a whole number >= 1/);
    expectOneLineError(await kvctl(['watch', 'rw/ttl0', '--count', '0']), 2, /^kvctl: --count: "0" is not a whole number >= 1/);
    expect(await kv.get('rw/ttl0')).toBeUndefined();
    expect(await kv.get('rw/lease0')).toBeUndefined();
    // 0 is meaningful here: "only if the key does not exist".
    expect((await kvctl(['set', 'rw/absent', '1', '--expected-revision', '0'])).code).toBe(0);
    expect((await kv.get('rw/absent'))?.value).toBe(1);
  });
});

describe('what kvctl would otherwise change silently is refused (exit 2, nothing stored)', () => {
  test('an object key given twice, in set, update and txn values', async () => {
    expectOneLineError(await kvctl(['set', 'ed/dup', '{"a":1,"a":2}']), 2, /^kvctl: the value has the object key "a" twice/);
    expectOneLineError(await kvctl(['set', 'ed/dup', '{"x":[{"b":1,"\\u0062":2}]}']), 2, /the object key "b" twice/);
    await kv.set('ed/up', { a: 0 });
    expectOneLineError(await kvctl(['update', 'ed/up', '{"a":1,"a":null}']), 2, /^kvctl: the patch has the object key "a" twice/);
    expectOneLineError(
      await kvctl(['txn', '--then', 'set ed/dup {"a":1,"a":2}']),
      2,
      /^kvctl: --then "set ed\/dup .*the object key "a" twice/,
    );
    expectOneLineError(await kvctl(['txn', '--if', 'value(ed/up) = {"a":0,"a":0}']), 2, /^kvctl: --if .*the object key "a" twice/);
    expect(await kv.get('ed/dup')).toBeUndefined();
    expect((await kv.get('ed/up'))?.value).toEqual({ a: 0 });
    // The same key in different objects is fine.
    expect((await kvctl(['set', 'ed/same', '[{"a":1},{"a":{"a":2}}]'])).code).toBe(0);
    expect((await kv.get('ed/same'))?.value).toEqual([{ a: 1 }, { a: { a: 2 } }]);
  });

  test('a number a 64-bit float would round (google.protobuf.Value keeps no other), in a value or a txn; numbers it keeps are stored', async () => {
    expectOneLineError(
      await kvctl(['set', 'ed/num', '12345678901234567890']),
      2,
      /^kvctl: the value has the number 12345678901234567890, which would be stored as 12345678901234567000/,
    );
    expectOneLineError(await kvctl(['set', 'ed/num', '{"id": 9007199254740993}']), 2, /the number 9007199254740993, .*9007199254740992/);
    expectOneLineError(await kvctl(['set', 'ed/num', '[-1e-400]']), 2, /the number -1e-400, which would be stored as 0/);
    expectOneLineError(await kvctl(['set', 'ed/num', '1e400']), 2, /the number 1e400, larger than a JSON number can be here/);
    expectOneLineError(await kvctl(['txn', '--then', 'set ed/num 123456789012345678']), 2, /^kvctl: --then .*123456789012345678/);
    expect(await kv.get('ed/num')).toBeUndefined();
    expect((await kvctl(['set', 'ed/num', '[0.1, 1.10, -0, 0.000, 9007199254740992, 1e21, 5e-324, -2.5e-3]'])).code).toBe(0);
    expect((await kv.get('ed/num'))?.value).toEqual([0.1, 1.1, 0, 0, 9007199254740992, 1e21, 5e-324, -0.0025]);
  });

  test('an unpaired surrogate escape, in a value or a txn key; a proper pair is stored as it is', async () => {
    expectOneLineError(await kvctl(['set', 'ed/sur', '"\\ud800"']), 2, /^kvctl: the value has an unpaired surrogate \\ud800/);
    expectOneLineError(await kvctl(['set', 'ed/sur', '{"\\udc00": 1}']), 2, /unpaired surrogate \\udc00/);
    expectOneLineError(await kvctl(['txn', '--then', 'del "ed/\\udc00"']), 2, /^kvctl: --then .*unpaired surrogate \\udc00/);
    expect(await kv.get('ed/sur')).toBeUndefined();
    expect((await kvctl(['set', 'ed/pair', '"\\ud83d\\ude00"'])).code).toBe(0);
    expect((await kv.get('ed/pair'))?.value).toBe('\u{1f600}');
  });

  test('bytes that are not UTF-8 in @FILE, on stdin or in an argument; U+FFFD itself is a character like any other', async () => {
    const file = path.join(scratch, 'latin1.json');
    writeFileSync(file, Buffer.from('"caf\xe9"', 'latin1'));
    expectOneLineError(
      await kvctl(['set', 'ed/utf8', `@${file}`]),
      2,
      /^kvctl: .*latin1\.json is not valid UTF-8 \(byte 0xe9 at offset 4\)/,
    );
    const env = { KV_ENDPOINTS: server.address };
    expectOneLineError(
      await runCommand('sh', ['-c', `printf '"\\377"' | ${KVCTL_SHELL} set ed/utf8`], { env }),
      2,
      /^kvctl: stdin is not valid UTF-8/,
    );
    expect(await kv.get('ed/utf8')).toBeUndefined();
    expectOneLineError(
      await runCommand('sh', ['-c', `${KVCTL_SHELL} set "$(printf 'ed/bad\\377')" 1`], { env }),
      2,
      /^kvctl: argument 2 .* is not valid UTF-8 \(byte 0xff at offset 6\)/,
    );
    expect(await kv.get('ed/bad\ufffd')).toBeUndefined();
    expect((await kvctl(['set', 'ed/ok\ufffd', '"\ufffd"'])).code).toBe(0);
    expect((await kv.get('ed/ok\ufffd'))?.value).toBe('\ufffd');
  });
});

describe('transactions, updates, leases and watch', () => {
  test('txn: the --then ops when every --if holds (exit 0), the --else ops otherwise (exit 3), one revision each', async () => {
    const created = await kv.set('tx/a', { n: 1 });
    const won = await kvctl(['txn', '--if', `mod(tx/a) = ${created}`, '--then', 'set tx/a {"n": 2}', '--then', 'set tx/b "also"']);
    expect(won.code).toBe(0);
    const result = JSON.parse(won.stdout);
    expect(result).toMatchObject({ succeeded: true, results: [{ type: 'set' }, { type: 'set' }] });
    expect((await kv.get('tx/b'))?.modRevision).toBe(result.revision);
    expect((await kv.get('tx/a'))?.modRevision).toBe(result.revision);

    const lost = await kvctl(['txn', '--if', `mod(tx/a) = ${created}`, '--then', 'del tx/a', '--else', 'get tx/a']);
    expect(lost.code).toBe(3);
    expect(JSON.parse(lost.stdout)).toMatchObject({ succeeded: false, results: [{ type: 'get', key: 'tx/a', value: { n: 2 } }] });
    expect(await kv.get('tx/a')).toBeDefined();
    expectOneLineError(await kvctl(['txn', '--if', 'mod(tx/a) ~ 3']), 2, /--if/);
  });

  test('a txn the server refuses names the --if, --then or --else as typed, not the wire\'s "success op 1"', async () => {
    const refused = [
      [['--then', 'set tx/ok 1', '--then', 'set "" 2'], '--then "set "" 2": key must be a non-empty string (INVALID_KEY)'],
      [['--if', 'version(tx/a) = 0', '--then', 'get tx/a', '--else', 'get tx/a', '--else', 'del ""'], '--else "del """: key'],
      [['--if', 'version(tx/a) = 0', '--if', 'version("") = 0', '--then', 'get tx/a'], '--if "version("") = 0": key'],
      [['--then', 'set tx/a 1', '--then', 'set tx/a 2'], 'the --then ops write key "tx/a" more than once (INVALID_ARGUMENT)'],
      [['--else', 'clear tx/', '--else', 'set tx/b 1'], 'the --else ops write key "tx/b" and also clear it'],
      [Array.from({ length: 129 }, () => ['--if', 'version(tx/a) > 0']).flat(), 'a transaction has at most 128 --if compares;'],
      [Array.from({ length: 129 }, () => ['--else', 'get tx/a']).flat(), 'a transaction has at most 128 --else ops; this one has 129'],
    ] as const;
    for (const [args, said] of refused) {
      const result = await kvctl(['txn', ...args]);
      expectOneLineError(result, 5, /^kvctl: /);
      expect({ args, stderr: result.stderr.slice('kvctl: '.length, 'kvctl: '.length + said.length) }).toEqual({ args, stderr: said });
      expect(result.stderr).not.toMatch(/success|failure|compare \d/);
    }
  });

  test('update merges a patch on the server; a key on a revoked lease is gone', async () => {
    await kv.set('up/a', { keep: 1, drop: true });
    const updated = await kvctl(['update', 'up/a', '{"drop": null, "add": [1]}']);
    expect(updated.code).toBe(0);
    expect(JSON.parse(updated.stdout)).toMatchObject({ key: 'up/a', value: { keep: 1, add: [1] }, version: 2 });

    const granted = await kvctl(['lease', 'grant', '60000']);
    const { id } = JSON.parse(granted.stdout) as { id: number };
    expect((await kvctl(['set', 'up/leased', '1', '--lease', String(id)])).code).toBe(0);
    expect((await kv.get('up/leased'))?.lease).toBe(id);
    expect(JSON.parse((await kvctl(['lease', 'info', String(id)])).stdout)).toMatchObject({ id, ttlMs: 60000 });
    expect(JSON.parse((await kvctl(['lease', 'revoke', String(id)])).stdout)).toEqual({ id, deletedCount: 1 });
    expect(await kv.get('up/leased')).toBeUndefined();
    expectOneLineError(
      await kvctl(['lease', 'info', String(id)]),
      1,
      /not found \(never granted, expired or revoked\) \(LEASE_NOT_FOUND\)$/m,
    );
  });

  test('get, get --prefix, update and a txn get name the lease a key is on, as watch does; a key on none has no lease field', async () => {
    const lease = await kv.grantLease(60_000);
    await kv.set('le/shared', 1, { lease: lease.id });
    await kv.set('le/own', 2, { ttlMs: 60_000 });
    await kv.set('le/none', 3);
    const own = (await kv.get('le/own'))!.lease;
    expect(own).toBeGreaterThan(0);

    expect(JSON.parse((await kvctl(['get', 'le/shared'])).stdout)).toMatchObject({ key: 'le/shared', lease: lease.id });
    expect(JSON.parse((await kvctl(['get', 'le/own'])).stdout)).toMatchObject({ key: 'le/own', lease: own });
    expect(JSON.parse((await kvctl(['get', 'le/none'])).stdout)).not.toHaveProperty('lease');
    const listed = JSON.parse((await kvctl(['get', '--prefix', 'le/'])).stdout) as { key: string; lease?: number }[];
    expect(listed.map(({ key, lease }) => [key, lease])).toEqual([
      ['le/none', undefined],
      ['le/own', own],
      ['le/shared', lease.id],
    ]);
    expect(JSON.parse((await kvctl(['update', 'le/shared', '{"a": 1}'])).stdout)).toMatchObject({ key: 'le/shared', lease: lease.id });
    const txn = JSON.parse((await kvctl(['txn', '--then', 'get le/shared'])).stdout) as { results: unknown[] };
    expect(txn.results).toEqual([expect.objectContaining({ type: 'get', key: 'le/shared', lease: lease.id })]);

    const table = (await kvctl(['get', '--prefix', 'le/', '-o', 'table'])).stdout.split('\n');
    expect(table[0]).toMatch(/^KEY +VERSION +CREATE_REVISION +MOD_REVISION +LEASE +VALUE$/);
    expect(table.slice(1)).toEqual([
      expect.stringMatching(/^le\/none +1 +\d+ +\d+ +3$/),
      expect.stringMatching(new RegExp(`^le/own +1 +\\d+ +\\d+ +${own} +2$`)),
      expect.stringMatching(new RegExp(`^le/shared +2 +\\d+ +\\d+ +${lease.id} +\\{"a":1\\}$`)),
      '',
    ]);
    await kv.revokeLease(lease.id);
    await kv.delete('le/own');
  });

  test('watch --prefix prints each change as a JSON line, from --rev on, and stops after --count', async () => {
    const first = await kv.set('wa/1', 'one');
    await kv.set('elsewhere', 0);
    const watching = kvctl(['watch', '--prefix', 'wa/', '--rev', String(first), '--count', '3']);
    await kv.set('wa/2', 'two');
    await kv.delete('wa/1');
    const result = await watching;
    expect(result.code).toBe(0);
    const lines = result.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { type: string; key: string });
    expect(lines.map((e) => [e.type, e.key])).toEqual([
      ['put', 'wa/1'],
      ['put', 'wa/2'],
      ['delete', 'wa/1'],
    ]);
  });

  test('watch -o value prints the values set, and says a delete on stderr: a delete is not a set to ""', async () => {
    const first = await kv.set('wv/k', '');
    await kv.delete('wv/k');
    const third = await kv.set('wv/k', { n: 1 });
    const result = await kvctl(['watch', 'wv/k', '--rev', String(first), '--count', '3', '-o', 'value']);
    expect(result).toEqual({
      code: 0,
      stdout: '\n{"n":1}\n',
      stderr: `kvctl: key "wv/k" deleted at revision ${third - 1} (-o value prints the values set)\n`,
    });
  });
});

describe('listing and clearing', () => {
  test('ls prints every key under the prefix across pages, in order', async () => {
    const keys = Array.from({ length: 230 }, (_, i) => `ls/${String(i).padStart(3, '0')}`);
    await Promise.all(keys.map((key) => kv.set(key, 1)));
    await kv.set('lsx/outside', 1);

    const json = await kvctl(['ls', 'ls/']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual(keys);
    expect((await kvctl(['ls', 'ls/', '-o', 'value'])).stdout).toBe(`${keys.join('\n')}\n`);
    expect(JSON.parse((await kvctl(['ls', 'nothing-here/'])).stdout)).toEqual([]);
  });

  test('clear without a terminal deletes at once and prints the count', async () => {
    await Promise.all(['cl/a', 'cl/b', 'cl/c'].map((key) => kv.set(key, 1)));
    const cleared = await kvctl(['clear', 'cl/']);
    expect(cleared.code).toBe(0);
    expect(JSON.parse(cleared.stdout)).toEqual({ prefix: 'cl/', deletedCount: 3 });
    expect(JSON.parse((await kvctl(['ls', 'cl/'])).stdout)).toEqual([]);
  });
});

describe('on a terminal (script(1) gives kvctl a pseudo-terminal)', () => {
  /** Runs a kvctl command line with a terminal for stdin and stdout, typing `typed` into it. */
  const inTerminal = (args: string, typed = ''): Promise<KvctlResult> =>
    runCommand('script', ['-qec', `${KVCTL_SHELL} ${args}`, '/dev/null'], { input: typed, env: { KV_ENDPOINTS: server.address } });

  test('output is a table for a person', async () => {
    await kv.set('tty/ada', { name: 'Ada' });
    const result = await inTerminal('get tty/ada');
    expect(result.code).toBe(0);
    expect(result.stdout.replaceAll('\r', '').split('\n')).toEqual([
      'KEY      VERSION  CREATE_REVISION  MOD_REVISION  LEASE  VALUE',
      expect.stringMatching(/^tty\/ada {2}1 {8}\d+ +\d+ +\{"name":"Ada"\}$/),
      '',
    ]);
  });

  test('clear asks first: "n" deletes nothing and exits 7, "y" deletes, --yes does not ask', async () => {
    await Promise.all(['ask/a', 'ask/b'].map((key) => kv.set(key, 1)));
    const declined = await inTerminal('clear ask/', 'n\n');
    expect(declined.code).toBe(7);
    expect(declined.stdout).toContain('Delete every key under "ask/"? [y/N]');
    expect(declined.stdout).toContain('kvctl: not confirmed; nothing deleted');
    expect(await kv.get('ask/a')).toBeDefined();

    const confirmed = await inTerminal('clear ask/', 'y\n');
    expect(confirmed.code).toBe(0);
    expect(confirmed.stdout).toMatch(/PREFIX +DELETED\r\nask\/ +2/);

    await kv.set('ask/c', 1);
    const unasked = await inTerminal('clear ask/ --yes -o value');
    expect(unasked.code).toBe(0);
    expect(unasked.stdout).not.toContain('[y/N]');
    expect(unasked.stdout.replaceAll('\r', '')).toBe('1\n');
  });

  test('a txn with a clear asks first too: "n" changes nothing and exits 7, --yes does not ask', async () => {
    await kv.set('askt/a', 1);
    const declined = await inTerminal(`txn --then 'set askt/b 2' --then 'clear ""'`, 'n\n');
    expect(declined.code).toBe(7);
    expect(declined.stdout).toContain('This transaction may delete every key in the store: go on? [y/N]');
    expect(declined.stdout).toContain('kvctl: not confirmed; nothing changed');
    expect(await kv.get('askt/a')).toBeDefined();
    expect(await kv.get('askt/b')).toBeUndefined();

    const unasked = await inTerminal(`txn --then 'clear askt/' --yes -o value`);
    expect(unasked.code).toBe(0);
    expect(unasked.stdout).not.toContain('[y/N]');
    expect(await kv.get('askt/a')).toBeUndefined();
  });
});

const { tool: jq, test: testJq } = testWithTool('jq');
testJq('JSON output pipes into jq', async () => {
  await kv.set('jq/ada', { name: 'Ada', langs: ['en', 'fr'] });
  const result = await runCommand('sh', ['-c', `${KVCTL_SHELL} get jq/ada | '${jq!}' -r '.value.langs[1]'`], {
    env: { KV_ENDPOINTS: server.address },
  });
  expect(result).toEqual({ code: 0, stdout: 'fr\n', stderr: '' });
});

test('a reader that closes the pipe early ends kvctl quietly', async () => {
  await Promise.all(Array.from({ length: 300 }, (_, i) => kv.set(`pipe/${i}`, i)));
  const result = await runCommand('sh', ['-c', `${KVCTL_SHELL} ls pipe/ -o value | head -n 1`], { env: { KV_ENDPOINTS: server.address } });
  expect(result).toEqual({ code: 0, stdout: 'pipe/0\n', stderr: '' });
});

describe('global options', () => {
  test('KV_ENDPOINTS and KV_OUTPUT are read; a flag wins over its variable', async () => {
    await kv.set('env/a', 'A');
    expect((await kvctl(['get', 'env/a'], { env: { KV_OUTPUT: 'value' } })).stdout).toBe('A\n');
    expect(JSON.parse((await kvctl(['get', 'env/a', '-o', 'json'], { env: { KV_OUTPUT: 'value' } })).stdout).value).toBe('A');
    const flagWins = await runKvctl(['get', 'env/a', '--endpoint', server.address, '-o', 'value'], {
      env: { KV_ENDPOINTS: '127.0.0.1:1' },
    });
    expect(flagWins.stdout).toBe('A\n');
  });

  test('with several endpoints a read that finds one down is answered by the next', async () => {
    await kv.set('env/b', 'B');
    const result = await kvctl(['get', 'env/b', '-o', 'value', '--endpoint', `127.0.0.1:1,${server.address}`]);
    expect(result).toEqual({ code: 0, stdout: 'B\n', stderr: '' });
  });

  test('no server at the endpoint: exit 4, naming the endpoint', async () => {
    expectOneLineError(await kvctl(['get', 'x'], { env: { KV_ENDPOINTS: '127.0.0.1:1' } }), 4, /^kvctl: 127\.0\.0\.1:1: .*\(UNAVAILABLE\)/);
  });

  test('ls with no server: exit 4 and nothing on stdout (not even the opening "[" of the JSON array)', async () => {
    expectOneLineError(await kvctl(['ls', 'x/'], { env: { KV_ENDPOINTS: '127.0.0.1:1' } }), 4, /\(UNAVAILABLE\)/);
  });

  test('plaintext to an address that is not loopback is refused before connecting, unless --insecure', async () => {
    // Refused before any connection is attempted: nothing is sent to that address.
    expectOneLineError(
      await kvctl(['get', 'x'], { env: { KV_ENDPOINTS: '192.0.2.1:50051' } }),
      2,
      /192\.0\.2\.1:50051 is not a loopback address: give --tls-ca \(TLS\), or --insecure/,
    );
    await kv.set('env/local', 1);
    expect(
      (
        await kvctl(['get', 'env/local', '--insecure', '-o', 'value'], {
          env: { KV_ENDPOINTS: `localhost:${server.address.split(':')[1]}` },
        })
      ).stdout,
    ).toBe('1\n');
  });

  test('usage mistakes exit 2 with one line', async () => {
    expectOneLineError(await kvctl(['frobnicate']), 2, /unknown command 'frobnicate'/);
    expectOneLineError(await kvctl(['get']), 2, /get needs a KEY, or --prefix/);
    expectOneLineError(await kvctl(['get', 'k', '--bogus']), 2, /unknown option '--bogus'/);
    expectOneLineError(await kvctl(['get', 'k', '-o', 'yaml']), 2, /'yaml' is invalid/);
    expectOneLineError(await kvctl(['get', 'k', '--timeout-ms', 'soon']), 2, /--timeout-ms: "soon"/);
    expectOneLineError(await kvctl(['get', 'k', '--tls-cert', 'c.pem']), 2, /--tls-cert and --tls-key go together/);
    expectOneLineError(await kvctl(['watch']), 2, /^kvctl: watch needs a KEY or --prefix PREFIX \(""/);
    expectOneLineError(await kvctl(['watch', 'k', '--prefix', 'p/']), 2, /^kvctl: watch needs a KEY or --prefix, not both\n$/);
  });

  test('a bad value from a KV_* variable is named by the variable, as a bad flag is by the flag', async () => {
    expectOneLineError(
      await kvctl(['get', 'k'], { env: { KV_TIMEOUT_MS: 'abc' } }),
      2,
      /^kvctl: KV_TIMEOUT_MS: "abc" is not a positive integer\n$/,
    );
    expectOneLineError(
      await kvctl(['get', 'k'], { env: { KV_ENDPOINTS: 'localhost' } }),
      2,
      /^kvctl: KV_ENDPOINTS: "localhost" has no port/,
    );
    expectOneLineError(
      await kvctl(['get', 'k'], { env: { KV_TLS_CA: path.join(scratch, 'no-ca.pem') } }),
      2,
      /^kvctl: KV_TLS_CA: cannot read /,
    );
    expectOneLineError(await kvctl(['get', 'k'], { env: { KV_OUTPUT: 'xml' } }), 2, /KV_OUTPUT/);
    // Given as a flag, the same value is named by the flag, whatever the variable holds.
    expectOneLineError(await kvctl(['get', 'k', '--timeout-ms', 'abc'], { env: { KV_TIMEOUT_MS: '5' } }), 2, /^kvctl: --timeout-ms: "abc"/);
  });

  test('an endpoint without a valid port, or a timeout longer than a timer can wait, is a usage error', async () => {
    expectOneLineError(await kvctl(['get', 'k', '--endpoint', 'localhost']), 2, /^kvctl: --endpoint: "localhost" has no port/);
    expectOneLineError(await kvctl(['get', 'k', '--endpoint', '::1']), 2, /^kvctl: --endpoint: "::1" has no port .*\[::1\]:/);
    expectOneLineError(
      await kvctl(['get', 'k', '--endpoint', '127.0.0.1:99999']),
      2,
      /^kvctl: --endpoint: "127\.0\.0\.1:99999": .*1 to 65535/,
    );
    expectOneLineError(await kvctl(['get', 'k', '--endpoint', '127.0.0.1:notaport']), 2, /"notaport" is not a port number/);
    expectOneLineError(await kvctl(['get', 'k'], { env: { KV_ENDPOINTS: '[::1]:0' } }), 2, /1 to 65535/);
    expectOneLineError(await kvctl(['get', 'k', '--timeout-ms', '99999999999999999999']), 2, /^kvctl: --timeout-ms: .*2147483647/);
    expectOneLineError(await kvctl(['get', 'k', '--timeout-ms', '2147483648']), 2, /^kvctl: --timeout-ms: .*2147483647/);
    await kv.set('env/long', 'L');
    expect(await kvctl(['get', 'env/long', '-o', 'value', '--timeout-ms', '2147483647'])).toEqual({ code: 0, stdout: 'L\n', stderr: '' });
  });

  test('--help lists the commands, the environment and the exit codes', async () => {
    const help = await kvctl(['--help']);
    expect(help.code).toBe(0);
    for (const text of ['get [options] [key]', 'clear [options] <prefix>', 'KV_ENDPOINTS', '3  conflict', '4  unavailable'])
      expect(help.stdout).toContain(text);
  });

  test("--help's exit codes say what the README's table says (health: exit 4 unless every endpoint is SERVING)", async () => {
    const help = (await kvctl(['--help'])).stdout;
    const listed = [...help.matchAll(/^ {2}(\d+) {2}(.+)$/gm)].map(([, code, meaning]) => `${code} ${meaning}`);
    const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
    const documented = [...readme.matchAll(/^\| (\d+) \| (.+) \|$/gm)].map(([, code, meaning]) => `${code} ${meaning.replaceAll('`', '')}`);
    expect(listed).toHaveLength(11);
    expect(listed).toEqual(documented);
  });
});

describe('restore', () => {
  test('a backup file that cannot be read is a usage error (exit 2) without a gRPC status name, and nothing is created', async () => {
    const target = path.join(scratch, 'restored');
    const missing = await kvctl(['restore', path.join(scratch, 'nonexist.backup'), '--data-dir', target]);
    expectOneLineError(missing, 2, /^kvctl: cannot read .*nonexist\.backup: ENOENT.*; nothing was restored$/m);
    expect(missing.stderr).not.toMatch(/INVALID_ARGUMENT/);
    expectOneLineError(
      await kvctl(['restore', scratch, '--data-dir', target]),
      2,
      /^kvctl: cannot read .*: it is a directory, not a file; nothing was restored/,
    );
    expect(existsSync(target)).toBe(false);
  });
});

describe('health and version', () => {
  test('health is SERVING with exit 0', async () => {
    const result = await kvctl(['health']);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ endpoint: server.address, status: 'SERVING' });
  });

  test('version and --version print the package version', async () => {
    const { version } = JSON.parse(readFileSync(path.join(REPO_ROOT, 'clients/kvctl/package.json'), 'utf8'));
    expect(JSON.parse((await kvctl(['version'])).stdout)).toEqual({ kvctl: version });
    expect((await kvctl(['--version'])).stdout).toBe(`${version}\n`);
  });
});

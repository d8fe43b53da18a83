/** kvctl's help: a command's own --help lists the global flags too, and `help` of a command that is not one is a usage error. */
import { runKvctl } from '../support/kvctl-process';

const GLOBAL_FLAGS = [
  '--endpoint',
  '--tls-ca',
  '--tls-cert',
  '--tls-key',
  '--tls-server-name',
  '--token',
  '--token-file',
  '--insecure',
  '--output',
  '--timeout-ms',
];

test('a command\'s --help (and "help COMMAND") lists the global flags, with their variables', async () => {
  for (const args of [
    ['get', '--help'],
    ['help', 'get'],
    ['lease', 'grant', '--help'],
    ['help', 'lease'],
  ]) {
    const help = await runKvctl(args);
    expect({ args, code: help.code, stderr: help.stderr }).toEqual({ args, code: 0, stderr: '' });
    expect(help.stdout).toMatch(/^Global Options:$/m);
    const globals = help.stdout.slice(help.stdout.indexOf('Global Options:'));
    for (const flag of GLOBAL_FLAGS) expect({ args, listed: globals.includes(flag) }).toEqual({ args, listed: true });
    expect(globals).toContain('KV_ENDPOINTS');
  }
  // The command's own options stay apart from them.
  const get = (await runKvctl(['get', '--help'])).stdout;
  expect(get.indexOf('--prefix')).toBeLessThan(get.indexOf('Global Options:'));
});

test('"help NAME" of no such command fails as an unknown command does: one line, exit 2', async () => {
  const unknown = await runKvctl(['bogus']);
  expect(unknown).toEqual({ code: 2, stdout: '', stderr: "kvctl: unknown command 'bogus'\n" });
  expect(await runKvctl(['help', 'bogus'])).toEqual(unknown);
  // With commander's suggestion, as for the command itself.
  const typo = await runKvctl(['gte']);
  expect(typo).toEqual({ code: 2, stdout: '', stderr: expect.stringMatching(/^kvctl: unknown command 'gte'[^\n]*get[^\n]*\n$/) });
  expect(await runKvctl(['help', 'gte'])).toEqual(typo);
  // A subcommand of lease too, either way round.
  const sub = await runKvctl(['lease', 'bogus']);
  expect(sub).toEqual({ code: 2, stdout: '', stderr: "kvctl: unknown command 'bogus'\n" });
  expect(await runKvctl(['help', 'lease', 'bogus'])).toEqual(sub);
  expect(await runKvctl(['lease', 'help', 'bogus'])).toEqual(sub);
});

test('"help" alone, and "help COMMAND" of a real one, print that help on stdout, exit 0', async () => {
  const all = await runKvctl(['help']);
  expect({ code: all.code, stderr: all.stderr }).toEqual({ code: 0, stderr: '' });
  expect(all.stdout).toBe((await runKvctl(['--help'])).stdout);
  expect(all.stdout).toMatch(/^ {2}help \[command\.\.\.\] +display help for command$/m);
  const grant = await runKvctl(['help', 'lease', 'grant']);
  expect(grant).toEqual({ code: 0, stdout: (await runKvctl(['lease', 'grant', '--help'])).stdout, stderr: '' });
  expect(grant.stdout).toMatch(/^Usage: kvctl lease grant /);
  expect((await runKvctl(['lease', 'help', 'grant'])).stdout).toBe(grant.stdout);
});

test('no command, or lease with none: one line naming the commands, exit 2 (not the whole help on stderr)', async () => {
  const bare = await runKvctl([]);
  expect(bare).toEqual({
    code: 2,
    stdout: '',
    stderr:
      'kvctl: kvctl needs a command: get, set, update, del, ls, clear, watch, txn, lease, backup, restore, import, health, version ' +
      '(`kvctl --help` says what each does)\n',
  });
  // Global flags alone are no command either.
  expect(await runKvctl(['--endpoint', '127.0.0.1:1', '-o', 'json'])).toEqual(bare);
  expect(await runKvctl(['lease'])).toEqual({
    code: 2,
    stdout: '',
    stderr: 'kvctl: kvctl lease needs a command: grant, keepalive, revoke, info, ls (`kvctl lease --help` says what each does)\n',
  });
});

test('txn with no --if, --then or --else is a usage mistake (exit 2), not an empty transaction', async () => {
  // Nothing listens at this endpoint: the line comes before any call.
  expect(await runKvctl(['txn', '--endpoint', '127.0.0.1:1'])).toEqual({
    code: 2,
    stdout: '',
    stderr: "kvctl: txn needs an --if, --then or --else, e.g. kvctl txn --if 'version(k) = 0' --then 'set k 1'\n",
  });
});

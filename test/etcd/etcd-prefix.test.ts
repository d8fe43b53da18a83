/**
 * --etcd-prefix is a namespace only if it ends in '/': kv's keys follow it
 * byte for byte, so a frontend on "qa" listed, read and cleared the keys of
 * one on "qa2/", and one on "" owned every key of the cluster. Such a
 * prefix is refused at start, in one line naming the flag (or the variable
 * it came from) and what to give instead, as other configuration mistakes
 * are (exit 2). No etcd is needed: the refusal comes before any connection.
 */
import { ConfigError, loadConfig } from '../../src/config';
import { runServerToExit } from '../support/server-process';

const ETCD = ['--engine', 'etcd', '--etcd-endpoints', 'http://127.0.0.1:2379'];

function refusal(argv: string[], env: NodeJS.ProcessEnv = {}): string {
  try {
    loadConfig(argv, env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error(`accepted: ${argv.join(' ')}`);
}

test('a prefix without a trailing "/" is refused, naming the flag and the prefix to give instead', () => {
  expect(refusal([...ETCD, '--etcd-prefix', 'qa'])).toBe(
    `--etcd-prefix: "qa" does not end in '/', so it would also cover the keys of other prefixes that start with it (such as "qa2/"); give "qa/"`,
  );
  expect(refusal([...ETCD, '--etcd-prefix', 'apps/qa'])).toContain('give "apps/qa/"');
});

test('an empty prefix is refused: it would be every key of the cluster', () => {
  expect(refusal([...ETCD, '--etcd-prefix', ''])).toBe(
    `--etcd-prefix: must not be empty (kv would own every key of the etcd cluster, other programs' too); give a prefix ending in '/', such as "kv/"`,
  );
});

test('from KV_ETCD_PREFIX, the variable is named with its flag', () => {
  expect(refusal(ETCD, { KV_ETCD_PREFIX: 'qa' })).toMatch(/^KV_ETCD_PREFIX \(--etcd-prefix\): "qa" does not end in '\/'.*give "qa\/"$/);
});

test('prefixes ending in "/" are taken as given, the default too; the file engine does not check a prefix it does not use', () => {
  const prefixOf = (argv: string[], env: NodeJS.ProcessEnv = {}): string => {
    const config = loadConfig(argv, env);
    if (typeof config === 'string') throw new Error(config);
    return config.etcdPrefix;
  };
  expect(prefixOf(ETCD)).toBe('kv/');
  expect(prefixOf([...ETCD, '--etcd-prefix', 'qa/'])).toBe('qa/');
  expect(prefixOf([...ETCD, '--etcd-prefix', '/'])).toBe('/');
  expect(prefixOf(ETCD, { KV_ETCD_PREFIX: 'team/app/' })).toBe('team/app/');
  expect(prefixOf(['--etcd-prefix', 'qa'])).toBe('qa');
});

test('kv-server refuses to start on such a prefix: exit 2, the reason on the first line, no stack trace', async () => {
  for (const [args, env, first] of [
    [['--etcd-prefix', 'qa'], {}, `kv-server: --etcd-prefix: "qa" does not end in '/'`],
    [['--etcd-prefix', ''], {}, 'kv-server: --etcd-prefix: must not be empty'],
    [[], { KV_ETCD_PREFIX: 'qa' }, `kv-server: KV_ETCD_PREFIX (--etcd-prefix): "qa" does not end in '/'`],
  ] as const) {
    const { code, stdout, stderr } = await runServerToExit(['--listen', '127.0.0.1:0', ...ETCD, ...args], env);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    const lines = stderr.split('\n');
    expect(lines[0].startsWith(first)).toBe(true);
    expect(lines[1]).toBe('');
    expect(stderr).not.toMatch(/^\s+at /m);
  }
}, 60_000);

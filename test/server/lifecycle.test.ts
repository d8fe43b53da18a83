import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { KvClient, KvError, status } from '@kv/client';
import { runServerToExit, startServer } from '../support/server-process';
import { makeTempDir, pollUntil } from '../support/temp-dirs';
import { healthOf } from '../support/health';

test('data survives a restart, and a SIGKILL', async () => {
  const first = await startServer();
  const kv = new KvClient(first.address);
  const revision = await kv.set('config/app', { theme: 'dark', retries: [1, 2, 4] });
  kv.close();
  expect(await first.stop()).toBe(0);

  const second = await startServer({ dataDir: first.dataDir });
  const kv2 = new KvClient(second.address);
  expect(await kv2.get('config/app')).toEqual({
    key: 'config/app',
    lease: 0,
    value: { theme: 'dark', retries: [1, 2, 4] },
    createRevision: revision,
    modRevision: revision,
    version: 1,
  });
  await kv2.set('config/app', 'after restart');
  kv2.close();
  await second.kill();

  // The lock of a SIGKILLed owner does not keep the next server out.
  const third = await startServer({ dataDir: first.dataDir });
  const kv3 = new KvClient(third.address);
  expect((await kv3.get('config/app'))?.value).toBe('after restart');
  kv3.close();
  expect(await third.stop()).toBe(0);
});

test('SIGTERM lets calls already in flight finish, then exits 0 and releases the directory', async () => {
  const server = await startServer();
  const kv = new KvClient(server.address, { retry: { attempts: 1 } });
  await kv.set('warm', 1);
  const writes = Array.from({ length: 300 }, (_, i) => kv.set(`inflight/${i}`, { i, pad: 'x'.repeat(200) }));
  // Once any of them is answered the server has read the burst off the one connection.
  await Promise.race(writes);
  const exit = server.stop('SIGTERM');
  const results = await Promise.allSettled(writes);
  expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
  expect(await exit).toBe(0);
  kv.close();

  const again = await startServer({ dataDir: server.dataDir });
  const kv2 = new KvClient(again.address);
  let count = 0;
  for await (const _ of kv2.keys({ prefix: 'inflight/' })) count++;
  expect(count).toBe(300);
  kv2.close();
  await again.stop();
});

test('calls after shutdown are refused as UNAVAILABLE, not hung', async () => {
  const server = await startServer();
  const kv = new KvClient(server.address, { retry: { attempts: 1 }, deadlineMs: 5000 });
  await kv.set('x', 1);
  expect(await server.stop()).toBe(0);
  const error = await kv.get('x').then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(KvError);
  expect((error as KvError).reason).toBe('UNAVAILABLE');
  kv.close();
});

test('a second server on the same data directory exits 1 with one clear line', async () => {
  const owner = await startServer();
  const { code, stdout, stderr } = await runServerToExit(['--listen', '127.0.0.1:0', '--data-dir', owner.dataDir]);
  expect(code).toBe(1);
  expect(stdout).toBe('');
  expect(stderr.trim().split('\n')).toHaveLength(1);
  expect(stderr).toContain('is in use by another process');
  expect(stderr).toContain(owner.dataDir);
  expect(stderr).not.toMatch(/\n\s+at /);
  await owner.stop();
});

test('if the directory lock is lost, writes are refused as UNAVAILABLE, reads go on and health says NOT_SERVING', async () => {
  const server = await startServer();
  const kv = new KvClient(server.address, { retry: { attempts: 1 } });
  await kv.set('before', 1);
  // Someone removes the lock by hand: another server could now open the directory and append to the same log.
  await rm(path.join(server.dataDir, 'LOCK'), { recursive: true, force: true });
  // Health notices without any write having to fail first.
  await pollUntil(
    'health to turn NOT_SERVING',
    async () => ((await healthOf(server.address)) === 'NOT_SERVING' ? true : undefined),
    20_000,
  );
  const refused = await pollUntil(
    'the store to notice the lost lock (at its next lock refresh)',
    () =>
      kv.set('after', 2).then(
        () => undefined,
        (error: unknown) => error as KvError,
      ),
    20_000,
  );
  expect(refused).toMatchObject({ code: status.UNAVAILABLE, reason: 'FAILED' });
  expect(refused.message).toContain('restart the server');
  expect((await kv.get('before'))?.value).toBe(1);
  expect(await healthOf(server.address)).toBe('NOT_SERVING');
  kv.close();
  await server.stop();
});

test('a data directory that cannot be used exits 1 with one line', async () => {
  const parent = makeTempDir();
  const file = path.join(parent, 'not-a-directory');
  await writeFile(file, 'x');
  const { code, stderr } = await runServerToExit(['--listen', '127.0.0.1:0', '--data-dir', path.join(file, 'data')]);
  expect(code).toBe(1);
  expect(stderr.trim().split('\n')).toHaveLength(1);
  expect(stderr).toContain('cannot open the store');
  expect(stderr).toContain('ENOTDIR');

  // procfs answers mkdir with ENOENT under a directory that exists: Node's recursive mkdir retried forever, deaf to signals.
  const proc = await runServerToExit(['--listen', '127.0.0.1:0', '--data-dir', '/proc/self/kv-data']);
  expect(proc.code).toBe(1);
  expect(proc.stderr.trim().split('\n')).toEqual([
    "kv-server: cannot open the store in /proc/self/kv-data: ENOENT: no such file or directory, mkdir '/proc/self/kv-data'",
  ]);
});

describe('flags and environment', () => {
  test.each([
    [['--no-such-flag'], /Unknown option '--no-such-flag'/],
    [['--fsync', 'sometimes'], /--fsync: "sometimes" is not one of always, interval, never/],
    [['--max-key-bytes', '0'], /--max-key-bytes: "0" is not a positive integer/],
    [['--shutdown-grace-ms', '2.5'], /--shutdown-grace-ms: "2\.5" is not a number of milliseconds from 0 to 2147483647/],
    [['--listen', 'nowhere'], /--listen: "nowhere" is not host:port/],
    [['stray-positional'], /positional/],
    [['--engine', 'sqlite'], /--engine: "sqlite" is not one of file, etcd/],
    [['--engine', 'etcd'], /--engine etcd needs --etcd-endpoints/],
    [
      ['--engine', 'etcd', '--etcd-endpoints', '127.0.0.1:2379'],
      /"127\.0\.0\.1:2379" is not a URL \(http:\/\/host:port or https:\/\/host:port\)/,
    ],
    [
      ['--engine', 'etcd', '--etcd-endpoints', 'ftp://127.0.0.1:2379'],
      /"ftp:\/\/127\.0\.0\.1:2379" is not http:\/\/host:port or https:\/\/host:port/,
    ],
    [
      ['--engine', 'etcd', '--etcd-endpoints', 'http://10.0.0.1:2379'],
      /is unencrypted and not on loopback: use https:\/\/ \(with --etcd-ca\), or --etcd-plaintext allow/,
    ],
    [['--engine', 'etcd', '--etcd-endpoints', 'http://127.0.0.1:2379,https://127.0.0.1:2380'], /mixes http:\/\/ and https:\/\//],
    [
      ['--engine', 'etcd', '--etcd-endpoints', 'http://127.0.0.1:2379', '--etcd-ca', 'ca.pem'],
      /--etcd-ca is for TLS to etcd, but --etcd-endpoints are http:\/\/ \(plaintext\): use https:\/\/ endpoints/,
    ],
    [
      ['--engine', 'etcd', '--etcd-endpoints', 'http://127.0.0.1:2379', '--etcd-cert', 'c.pem', '--etcd-key', 'k.pem'],
      /--etcd-cert is for TLS to etcd, but --etcd-endpoints are http:\/\//,
    ],
    [['--etcd-cert', 'c.pem'], /--etcd-cert and --etcd-key go together/],
    [['--etcd-username', 'kv'], /--etcd-username and --etcd-password-file go together/],
    [['--workers', '0'], /--workers: "0" is not a positive integer or auto/],
    [['--workers', '65'], /--workers: 65 workers is more than the 64 allowed/],
    [['--busy-poll-us', '1.5'], /--busy-poll-us: "1\.5" is not a number of microseconds from 0 to 10000/],
    [['--busy-poll-us', '10001'], /--busy-poll-us: "10001" is not a number of microseconds from 0 to 10000/],
  ])('kv-server %j exits 2 with a message and the usage', async (args, message) => {
    const { code, stderr } = await runServerToExit(args);
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
    expect(stderr).toContain('usage: kv-server');
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  test('a bad KV_* environment value names the variable and exits 2', async () => {
    const { code, stderr } = await runServerToExit([], { KV_MAX_VALUE_BYTES: 'lots' });
    expect(code).toBe(2);
    expect(stderr).toContain('KV_MAX_VALUE_BYTES: "lots" is not a positive integer');
  });

  test('environment variables configure the server and flags override them', async () => {
    const dataDir = makeTempDir();
    const server = await startServer({ dataDir, env: { KV_MAX_KEY_BYTES: '8', KV_FSYNC: 'never' } });
    expect(server.output()).toContain('fsync never');
    const kv = new KvClient(server.address);
    await expect(kv.set('123456789', 1)).rejects.toMatchObject({ reason: 'TOO_LARGE' });
    kv.close();
    await server.stop();
    const overridden = await startServer({ dataDir, env: { KV_MAX_KEY_BYTES: '8' }, args: ['--max-key-bytes', '16'] });
    const kv2 = new KvClient(overridden.address);
    expect(await kv2.set('123456789', 1)).toBeGreaterThan(0);
    kv2.close();
    await overridden.stop();
  });

  test('--help prints the usage and exits 0', async () => {
    const { code, stdout } = await runServerToExit(['--help']);
    expect(code).toBe(0);
    expect(stdout).toContain('--data-dir');
    expect(stdout).toContain('KV_DATA_DIR');
  });
});

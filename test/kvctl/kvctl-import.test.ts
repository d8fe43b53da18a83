/**
 * kvctl import FILE: a backup written into a running server through the
 * API, file engine to file engine and to the etcd engine: values, shared
 * leases granted anew and private ones as ttls, a non-empty target refused
 * unless --overwrite, a damaged file writing nothing, Txns split to fit
 * the server's limits, and a failure or Ctrl-C leaving only what it wrote.
 */
import { copyFileSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { KvClient, type JsonValue, type LeaseStatus } from '@kv/client';
import { describeWithEtcd, startEtcdCluster, type EtcdCluster } from '../support/etcd-cluster';
import { startFrontend, type Frontend } from '../support/etcd-frontends';
import { KVCTL_SHELL, runCommand, runKvctl, startKvctl, type KvctlResult } from '../support/kvctl-process';
import { startServer, type RunningServer } from '../support/server-process';
import { makeTempDir, pollUntil } from '../support/temp-dirs';

const SHORT_TTL_MS = 8000;
const LONG_TTL_MS = 600_000;
const BIG_VALUES = 40;
const BIG_VALUE_CHARS = 900_000;
const LEASED_KEYS = 1000;

interface ImportSummary {
  file: string;
  backupRevision: number;
  keys: number;
  leases: number;
  firstRevision: number | null;
  lastRevision: number | null;
}

const servers: RunningServer[] = [];
let scratch: string;
/** Values of every kind, 150 more keys (more than one Txn of 128 takes), keys on two shared leases (one short) and one on a short private lease. */
let backupFile: string;
let backupRevision: number;
let backedUp: Map<string, JsonValue>;
/** 40 values of 900 KB, written by kvctl backup. */
let bigBackupFile: string;
/** 1000 keys, each on a shared lease of its own: an import that takes a while, granting leases as it goes. */
let leasedBackupFile: string;

async function server(args: string[] = []): Promise<RunningServer> {
  const started = await startServer({ args });
  servers.push(started);
  return started;
}

const importInto = (address: string, args: string[], timeoutMs?: number): Promise<KvctlResult> =>
  runKvctl(['import', ...args], { env: { KV_ENDPOINTS: address }, timeoutMs });

function expectImported(result: KvctlResult): ImportSummary {
  expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
  return JSON.parse(result.stdout) as ImportSummary;
}

function expectRefused(result: KvctlResult, code: number, pattern: RegExp): void {
  expect({ code: result.code, stdout: result.stdout }).toEqual({ code, stdout: '' });
  expect(result.stderr).toMatch(/^kvctl: [^\n]+; nothing was imported\n$/);
  expect(result.stderr).toMatch(pattern);
}

async function allLeases(kv: KvClient): Promise<LeaseStatus[]> {
  const leases: LeaseStatus[] = [];
  for await (const lease of kv.leases()) leases.push(lease);
  return leases;
}

async function allEntries(kv: KvClient): Promise<Map<string, JsonValue>> {
  const entries = new Map<string, JsonValue>();
  for await (const entry of kv.entries()) entries.set(entry.key, entry.value);
  return entries;
}

async function withClient<T>(address: string, use: (kv: KvClient) => Promise<T>): Promise<T> {
  const kv = new KvClient(address);
  try {
    return await use(kv);
  } finally {
    kv.close();
  }
}

beforeAll(async () => {
  scratch = makeTempDir('kvctl-import-');
  const source = await server();
  await withClient(source.address, async (kv) => {
    await kv.set('a/object', { n: 1, list: [1, 'x', null, { deep: [true] }] });
    await kv.set('a/null', null);
    await kv.set('a/string', 'héllo \u001b 🔑');
    await kv.set('a/number', -1.5e300);
    await kv.set('a/twice', 1);
    await kv.set('a/twice', 2);
    for (let i = 0; i < 150; i++) await kv.set(`many/${String(i).padStart(3, '0')}`, i);
    const long = await kv.grantLease(LONG_TTL_MS);
    await kv.set('long/1', 'one', { lease: long.id });
    await kv.set('long/2', 'two', { lease: long.id });
    const short = await kv.grantLease(SHORT_TTL_MS);
    await kv.set('short/1', 'goes', { lease: short.id });
    await kv.set('own', 'goes too', { ttlMs: SHORT_TTL_MS });
    // Last in key order, so in the second Txn.
    await kv.set('zz/long', 'y'.repeat(2000));
    backedUp = await allEntries(kv);
    // The SDK's backup is kvctl backup's own writer; in-process, the short leases are certainly still live when it runs.
    backupFile = path.join(scratch, 'kv.backup');
    backupRevision = (await kv.backup(backupFile)).revision;
  });

  const bigSource = await server();
  await withClient(bigSource.address, async (kv) => {
    for (let i = 0; i < BIG_VALUES; i++) await kv.set(`big/${String(i).padStart(2, '0')}`, String(i % 10).repeat(BIG_VALUE_CHARS));
  });
  bigBackupFile = path.join(scratch, 'big.backup');
  const backup = await runKvctl(['backup', bigBackupFile], { env: { KV_ENDPOINTS: bigSource.address } });
  expect(backup.code).toBe(0);

  const leasedSource = await server();
  await withClient(leasedSource.address, async (kv) => {
    for (let i = 0; i < LEASED_KEYS; i += 100) {
      await Promise.all(
        Array.from({ length: 100 }, async (_, j) => {
          const lease = await kv.grantLease(LONG_TTL_MS);
          await kv.set(`leased/${String(i + j).padStart(4, '0')}`, i + j, { lease: lease.id });
        }),
      );
    }
    leasedBackupFile = path.join(scratch, 'leased.backup');
    await kv.backup(leasedBackupFile);
  });
}, 120_000);

afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  rmSync(scratch, { recursive: true, force: true });
});

describe('into a file engine server', () => {
  test('values and leases arrive: shared leases anew with their keys and ttl, private ones as ttls, which then expire', async () => {
    const target = await server();
    const summary = expectImported(await importInto(target.address, [backupFile]));
    // The target's own revisions: on a new store, two Txns (of 128 sets, the server's default limit, and the rest).
    expect(summary).toEqual({ file: backupFile, backupRevision, keys: backedUp.size, leases: 3, firstRevision: 1, lastRevision: 2 });

    await withClient(target.address, async (kv) => {
      expect(await allEntries(kv)).toEqual(backedUp);
      expect(await kv.get('a/twice')).toMatchObject({ value: 2, createRevision: 1, modRevision: 1, version: 1, lease: 0 });

      const long = (await kv.get('long/1'))!.lease;
      expect(long).not.toBe(0);
      expect((await kv.get('long/2'))!.lease).toBe(long);
      expect(await kv.leaseInfo(long, { keys: true })).toMatchObject({ ttlMs: LONG_TTL_MS, keys: ['long/1', 'long/2'] });
      const short = (await kv.get('short/1'))!.lease;
      expect(await kv.leaseInfo(short, { keys: true })).toMatchObject({ ttlMs: SHORT_TTL_MS, keys: ['short/1'] });
      const own = (await kv.get('own'))!.lease;
      const leases = [];
      for await (const lease of kv.leases()) leases.push(lease);
      expect(leases.find((lease) => lease.id === own)).toMatchObject({ ttlMs: SHORT_TTL_MS, keyCount: 1, private: true });
      expect(leases.find((lease) => lease.id === short)).toMatchObject({ keyCount: 1, private: false });
      expect(leases).toHaveLength(3);

      // Times to live run again from the import: the short ones expire on the target, the rest stays.
      await pollUntil(
        'the keys of the short leases to expire',
        async () => ((await kv.get('short/1')) === undefined && (await kv.get('own')) === undefined ? true : undefined),
        SHORT_TTL_MS + 20_000,
      );
      expect((await kv.get('long/1'))?.value).toBe('one');
      expect((await allEntries(kv)).size).toBe(backedUp.size - 2);
    });
  }, 60_000);

  test('a server that holds a key is refused (exit 3, a conflict: one line, nothing written); --overwrite sets the backup over it', async () => {
    const target = await server();
    await withClient(target.address, async (kv) => {
      await kv.set('a/string', 'mine');
      await kv.set('zzz/other', 'stays');
      const before = await kv.listPage({});

      expectRefused(
        await importInto(target.address, [backupFile]),
        3,
        /already holds keys: import into an empty server, or pass --overwrite/,
      );
      expect(await kv.listPage({})).toEqual(before);

      const summary = expectImported(await importInto(target.address, [backupFile, '--overwrite']));
      expect(summary).toMatchObject({ keys: backedUp.size, firstRevision: before.revision + 1, lastRevision: before.revision + 2 });
      const after = await allEntries(kv);
      expect(after.get('a/string')).toBe(backedUp.get('a/string'));
      expect(after.get('zzz/other')).toBe('stays');
      expect(after.size).toBe(backedUp.size + 1);
      // Overwritten, the key is at version 2 of the target's own history.
      expect(await kv.get('a/string')).toMatchObject({ version: 2, modRevision: before.revision + 1 });
    });
  }, 60_000);

  test('a damaged or cut-short file writes nothing, even with --overwrite: exit 9 (as restore), one line', async () => {
    const target = await server();
    const flipped = path.join(scratch, 'flipped.backup');
    copyFileSync(backupFile, flipped);
    const bytes = readFileSync(flipped);
    // A byte inside the entries: every message before it decodes and checks, only the SHA-256 at the end finds it.
    bytes[bytes.indexOf('goes too')] ^= 0x01;
    writeFileSync(flipped, bytes);
    const cut = path.join(scratch, 'cut.backup');
    copyFileSync(backupFile, cut);
    truncateSync(cut, statSync(cut).size - 10);

    expectRefused(await importInto(target.address, [flipped, '--overwrite']), 9, /SHA-256 does not match/);
    expectRefused(await importInto(target.address, [cut]), 9, /is incomplete/);
    expectRefused(await importInto(target.address, [scratch]), 2, /it is a directory/);
    await withClient(target.address, async (kv) => {
      expect(await kv.listPage({})).toEqual({ entries: [], nextPageToken: '', revision: 0 });
      const leases = [];
      for await (const lease of kv.leases()) leases.push(lease);
      expect(leases).toEqual([]);
    });
  }, 60_000);

  test('40 values of 900 KB are written in several Txns, each within the request limit', async () => {
    const target = await server();
    const summary = expectImported(await importInto(target.address, [bigBackupFile], 120_000));
    expect(summary).toMatchObject({ keys: BIG_VALUES, leases: 0, firstRevision: 1 });
    // 36 MB could not go in fewer than 3 requests of at most 16 MiB; about 1 MiB each, it is one value a Txn.
    expect(summary.lastRevision).toBeGreaterThanOrEqual(3);
    await withClient(target.address, async (kv) => {
      for (let i = 0; i < BIG_VALUES; i++) {
        expect((await kv.get(`big/${String(i).padStart(2, '0')}`))?.value).toBe(String(i % 10).repeat(BIG_VALUE_CHARS));
      }
    });
  }, 180_000);

  test('a server with a lower --max-txn-ops refuses the first Txn; the import goes on in smaller ones', async () => {
    const target = await server(['--max-txn-ops', '10']);
    const summary = expectImported(await importInto(target.address, [backupFile]));
    expect(summary).toMatchObject({ keys: backedUp.size, firstRevision: 1 });
    expect(summary.lastRevision).toBeGreaterThanOrEqual(Math.ceil(backedUp.size / 10));
    await withClient(target.address, async (kv) => expect(await allEntries(kv)).toEqual(backedUp));
  }, 60_000);

  test('a value the server refuses stops the import at its Txn: one line saying how far it got, to run it again with --overwrite', async () => {
    // Every value fits but zz/long's, which is in the second Txn (the keys after the first 128).
    const target = await server(['--max-value-bytes', '1000']);
    const result = await importInto(target.address, [backupFile]);
    expect({ code: result.code, stdout: result.stdout }).toEqual({ code: 5, stdout: '' });
    expect(result.stderr).toMatch(
      new RegExp(
        `^kvctl: [^\\n]*zz/long[^\\n]*\\(TOO_LARGE\\); the import stopped after 128 of ${backedUp.size} keys, which stay written: run it again with --overwrite\\n$`,
      ),
    );
    await withClient(target.address, async (kv) => {
      expect((await allEntries(kv)).size).toBe(128);
      // The long lease holds long/1 and long/2, written in the first Txn; short/1's lease, granted for the second, is revoked.
      const long = (await kv.get('long/1'))!.lease;
      expect(await allLeases(kv)).toEqual([expect.objectContaining({ id: long, keyCount: 2 })]);
    });
  }, 60_000);

  test('refused in the first Txn, nothing is written: one line saying so, the exit code of the refusal', async () => {
    const target = await server(['--max-key-bytes', '7']);
    const result = await importInto(target.address, [backupFile]);
    expect({ code: result.code, stdout: result.stdout }).toEqual({ code: 5, stdout: '' });
    expect(result.stderr).toMatch(/^kvctl: [^\n]*a\/number[^\n]*\(TOO_LARGE\); no key was imported\n$/);
    await withClient(target.address, async (kv) => {
      expect(await kv.listKeysPage({})).toMatchObject({ keys: [], nextPageToken: '' });
      // The long lease was granted for the first Txn (long/1 and long/2 are in it): revoked, as the short one, never granted.
      expect(await allLeases(kv)).toEqual([]);
    });
  }, 60_000);

  test('- or a pipe is refused in one line (exit 2): FILE is read twice, so it must be a regular file', async () => {
    const target = await server();
    const input = readFileSync(backupFile, 'latin1');
    for (const file of ['-', '/dev/stdin']) {
      const result = await runKvctl(['import', file], { env: { KV_ENDPOINTS: target.address }, input });
      expectRefused(
        result,
        2,
        /^kvctl: cannot read [^:]+: [^\n]*import reads FILE twice \(to check it, then to write it\), so it needs a regular file: save the backup to a file first/,
      );
      expect(result.stderr).not.toMatch(/ENOENT/);
    }
    await withClient(target.address, async (kv) => expect(await kv.listKeysPage({})).toMatchObject({ keys: [], nextPageToken: '' }));
  }, 60_000);

  test('on a terminal, the importing bar ends at the same MiB as the checking bar: the bytes of the file', async () => {
    const target = await server();
    // script(1) gives kvctl a terminal, where the bars are drawn.
    const result = await runCommand('script', ['-qec', `${KVCTL_SHELL} import '${leasedBackupFile}' -o value`, '/dev/null'], {
      env: { KV_ENDPOINTS: target.address },
      timeoutMs: 60_000,
    });
    expect(result.code).toBe(0);
    const lastMib = (label: string): string => {
      const drawn = [...result.stdout.matchAll(new RegExp(`${label} [^|]*\\| *\\d+/${LEASED_KEYS} keys \\| ([\\d.]+) MiB`, 'g'))];
      expect(drawn.length).toBeGreaterThan(0);
      return drawn[drawn.length - 1][1];
    };
    const fileMib = (statSync(leasedBackupFile).size / 1048576).toFixed(1);
    expect({ checking: lastMib('checking'), importing: lastMib('importing') }).toEqual({ checking: fileMib, importing: fileMib });
  }, 60_000);

  test.each(['SIGINT', 'SIGTERM'] as const)(
    '%s during the import stops it after the Txn in flight: one line saying how far it got, unused leases revoked, kvctl ends by the signal',
    async (signal) => {
      const target = await server();
      const running = startKvctl(['import', leasedBackupFile], { KV_ENDPOINTS: target.address });
      const { child, ended } = running;
      try {
        await withClient(target.address, async (kv) => {
          await pollUntil(
            'the import to write its first keys',
            async () => ((await kv.listKeysPage({ pageSize: 1 })).keys.length > 0 ? true : undefined),
            60_000,
          );
          child.kill(signal);
          // As a shell sees any kvctl command killed by it: 130 for SIGINT, 143 for SIGTERM.
          expect(await ended).toEqual({ code: null, signal });
          expect(running.stdout()).toBe('');
          const line = new RegExp(
            `^kvctl: interrupted \\(${signal}\\); the import stopped after (\\d+) of ${LEASED_KEYS} keys, which stay written: run it again with --overwrite\n$`,
          ).exec(running.stderr());
          expect(line).not.toBeNull();
          const written = Number(line![1]);
          expect(written).toBeLessThan(LEASED_KEYS);
          expect((await allEntries(kv)).size).toBe(written);
          // Every lease left holds its one key: those granted for keys not sent were revoked.
          const leases = await allLeases(kv);
          expect(leases).toHaveLength(written);
          expect(leases.every((lease) => lease.keyCount === 1)).toBe(true);

          const again = expectImported(await importInto(target.address, [leasedBackupFile, '--overwrite'], 60_000));
          expect(again).toMatchObject({ keys: LEASED_KEYS, leases: LEASED_KEYS });
          expect((await allEntries(kv)).size).toBe(LEASED_KEYS);
        });
      } finally {
        child.kill('SIGKILL');
      }
    },
    120_000,
  );
});

describeWithEtcd()('into an etcd engine frontend', () => {
  let cluster: EtcdCluster;
  const frontends: Frontend[] = [];

  beforeAll(async () => {
    cluster = await startEtcdCluster({ size: 1 });
  }, 60_000);

  afterAll(async () => {
    await Promise.all(frontends.map((f) => f.server.stop()));
    await cluster?.stop();
  });

  async function frontend(prefix: string): Promise<Frontend> {
    const started = await startFrontend(cluster, prefix);
    frontends.push(started);
    return started;
  }

  test('a file engine backup arrives whole: values, shared leases with their keys, private leases as ttls', async () => {
    const target = await frontend('/import-small/');
    const summary = expectImported(await importInto(target.address, [backupFile]));
    expect(summary).toMatchObject({ backupRevision, keys: backedUp.size, leases: 3 });
    // Two Txns, the first of 128 sets: etcd's own --max-txn-ops (128) counts kv's compare on each key it writes.
    expect(summary.lastRevision).toBe(summary.firstRevision! + 1);

    await withClient(target.address, async (kv) => {
      expect(await allEntries(kv)).toEqual(backedUp);
      const long = (await kv.get('long/1'))!.lease;
      expect(await kv.leaseInfo(long, { keys: true })).toMatchObject({ ttlMs: LONG_TTL_MS, keys: ['long/1', 'long/2'] });
      const own = (await kv.get('own'))!.lease;
      expect(await kv.leaseInfo(own, { keys: true })).toMatchObject({ ttlMs: SHORT_TTL_MS, keys: ['own'] });
      await pollUntil(
        'the keys of the short leases to expire',
        async () => ((await kv.get('short/1')) === undefined && (await kv.get('own')) === undefined ? true : undefined),
        SHORT_TTL_MS + 20_000,
      );
      expect((await kv.get('long/2'))?.value).toBe('two');
    });

    expectRefused(await importInto(target.address, [backupFile]), 3, /already holds keys/);
  }, 90_000);

  test('and back: kvctl backup of an etcd frontend imports into a file engine server, values and shared leases with their keys', async () => {
    const source = await frontend('/import-back/');
    expectImported(await importInto(source.address, [backupFile]));
    const back = path.join(scratch, 'from-etcd.backup');
    const backedUpFromEtcd = await runKvctl(['backup', back, '-o', 'json'], { env: { KV_ENDPOINTS: source.address } });
    expect({ code: backedUpFromEtcd.code, stderr: backedUpFromEtcd.stderr }).toEqual({ code: 0, stderr: '' });
    const onEtcd = await withClient(source.address, (kv) => allEntries(kv));
    const target = await server();
    const summary = expectImported(await importInto(target.address, [back]));
    await withClient(target.address, async (kv) => {
      const onFile = await allEntries(kv);
      // Keys of the short leases may have expired on either side meanwhile: the rest are the same.
      const lasting = (entries: Map<string, JsonValue>): Map<string, JsonValue> =>
        new Map([...entries].filter(([key]) => !key.startsWith('short/') && key !== 'own'));
      expect(lasting(onFile)).toEqual(lasting(onEtcd));
      expect(lasting(onFile).size).toBeGreaterThan(150);
      const long = (await kv.get('long/1'))!.lease;
      expect(long).toBeGreaterThan(0);
      expect(await kv.leaseInfo(long, { keys: true })).toMatchObject({ ttlMs: LONG_TTL_MS, keys: ['long/1', 'long/2'] });
    });
    expect(summary.keys).toBeGreaterThanOrEqual(backedUp.size - 3);
  }, 90_000);

  test("40 values of 900 KB fit etcd's request limit (1.5 MiB) in Txns of their own", async () => {
    const target = await frontend('/import-big/');
    const summary = expectImported(await importInto(target.address, [bigBackupFile], 120_000));
    expect(summary).toMatchObject({ keys: BIG_VALUES, leases: 0 });
    await withClient(target.address, async (kv) => {
      for (let i = 0; i < BIG_VALUES; i++) {
        expect((await kv.get(`big/${String(i).padStart(2, '0')}`))?.value).toBe(String(i % 10).repeat(BIG_VALUE_CHARS));
      }
    });
  }, 180_000);
});

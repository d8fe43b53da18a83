/**
 * Online backup and offline restore, the way an operator runs them: kvctl
 * backup against a real server taking writes, kvctl restore (and
 * kv-server --restore-from) into a new data directory, a server started on
 * it. What comes back must be exactly the store at the backup's revision,
 * worked out from every acknowledged write and its revision; a damaged
 * file must be refused before anything is written.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { KvClient, Op, type JsonValue } from '@kv/client';
import { runKvctl } from '../support/kvctl-process';
import { BackupResponse, type BackupEntry, type BackupLease } from '../../src/gen/kv/v1/kv';
import { openFileStore } from '../../src/store/file';
import { runServerToExit, spawnServer, startServer, type RunningServer } from '../support/server-process';
import { makeTempDir, pollUntil } from '../support/temp-dirs';

interface Write {
  revision: number;
  key: string;
  /** undefined: a delete. */
  value: JsonValue | undefined;
}

interface Expected {
  value: JsonValue;
  createRevision: number;
  modRevision: number;
  version: number;
}

/** The store at `revision`, from the acknowledged writes (each has a revision of its own). */
function stateAt(writes: Write[], revision: number): Map<string, Expected> {
  const state = new Map<string, Expected>();
  for (const w of [...writes].sort((a, b) => a.revision - b.revision)) {
    if (w.revision > revision) break;
    if (w.value === undefined) {
      state.delete(w.key);
      continue;
    }
    const before = state.get(w.key);
    state.set(w.key, {
      value: w.value,
      createRevision: before?.createRevision ?? w.revision,
      modRevision: w.revision,
      version: (before?.version ?? 0) + 1,
    });
  }
  return state;
}

async function readAll(kv: KvClient): Promise<Map<string, Expected>> {
  const state = new Map<string, Expected>();
  for await (const e of kv.entries({ pageSize: 100 })) {
    state.set(e.key, { value: e.value, createRevision: e.createRevision, modRevision: e.modRevision, version: e.version });
  }
  return state;
}

const servers: RunningServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

test('kvctl backup under concurrent writes restores exactly the store at its revision, leases included', async () => {
  const server = await startServer();
  servers.push(server);
  const kv = new KvClient(server.address);
  const dir = makeTempDir('kv-backup-');
  const file = path.join(dir, 'kv.backup');
  const writes: Write[] = [];
  try {
    for (let i = 0; i < 300; i++) {
      const value = { i, text: 'x'.repeat(i % 50), list: [i, null, true] };
      writes.push({ revision: await kv.set(`k/${i % 120}`, value), key: `k/${i % 120}`, value });
    }
    const lease = await kv.grantLease(600_000);
    const leased = { held: true };
    writes.push({ revision: await kv.set('lock/a', leased, { lease: lease.id }), key: 'lock/a', value: leased });

    // Writers keep going while the backup streams.
    let stop = false;
    const writer = async (n: number): Promise<void> => {
      for (let i = 0; !stop; i++) {
        const key = `k/${(i * 7 + n) % 150}`;
        if (i % 5 === 4) {
          // A delete of a missing key changes nothing and takes no revision of its own.
          const { revision, results } = await kv.txn().then(Op.delete(key)).commit();
          if (results[0].type === 'delete' && results[0].deleted) writes.push({ revision, key, value: undefined });
        } else {
          const value = { writer: n, i };
          writes.push({ revision: await kv.set(key, value), key, value });
        }
      }
    };
    const writers = [writer(1), writer(2)];
    const firstRevision = writes[writes.length - 1].revision;
    const backup = await runKvctl(['backup', file], { env: { KV_ENDPOINTS: server.address } });
    stop = true;
    await Promise.all(writers);
    expect(backup.stderr).toBe('');
    expect(backup.code).toBe(0);
    const summary = JSON.parse(backup.stdout) as { revision: number; keys: number; leases: number; sha256: string };
    // The writes went on around it: the backup is at some revision in between, not at either end.
    expect(summary.revision).toBeGreaterThan(firstRevision);
    expect(summary.revision).toBeLessThan(writes[writes.length - 1].revision);
    const expected = stateAt(writes, summary.revision);
    expect(summary.keys).toBe(expected.size);
    expect(summary.leases).toBe(1);

    const restoredDir = path.join(dir, 'restored');
    const restore = await runKvctl(['restore', file, '--data-dir', restoredDir]);
    expect(restore.code).toBe(0);
    expect(JSON.parse(restore.stdout)).toEqual({ dataDir: restoredDir, revision: summary.revision, keys: expected.size, leases: 1 });

    const restored = await startServer({ dataDir: restoredDir });
    servers.push(restored);
    const again = new KvClient(restored.address);
    try {
      expect(await readAll(again)).toEqual(expected);
      expect((await again.get('lock/a'))?.lease).toBe(lease.id);
      expect((await again.leaseInfo(lease.id))?.ttlMs).toBe(600_000);
      // The next write follows the backup's revision.
      expect(await again.set('after', 1)).toBe(summary.revision + 1);
    } finally {
      again.close();
    }
  } finally {
    kv.close();
  }
});

test('a backup with a flipped byte, or cut short, is refused whole: exit 9, one line, nothing written', async () => {
  const server = await startServer();
  servers.push(server);
  const kv = new KvClient(server.address);
  const dir = makeTempDir('kv-backup-damaged-');
  const file = path.join(dir, 'kv.backup');
  try {
    for (let i = 0; i < 50; i++) await kv.set(`k/${i}`, { i });
    await kv.backup(file);
  } finally {
    kv.close();
  }
  const good = readFileSync(file);

  const flipped = path.join(dir, 'flipped.backup');
  const bytes = Buffer.from(good);
  bytes[Math.floor(bytes.length / 2)] ^= 0x20;
  writeFileSync(flipped, bytes);
  const truncated = path.join(dir, 'truncated.backup');
  writeFileSync(truncated, good);
  truncateSync(truncated, good.length - 10);

  for (const damaged of [flipped, truncated]) {
    const target = path.join(dir, `from-${path.basename(damaged)}`);
    const result = await runKvctl(['restore', damaged, '--data-dir', target]);
    expect(result.code).toBe(9);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/^kvctl: .*nothing was restored/);
    expect(existsSync(target) ? readdirSync(target) : []).toEqual([]);

    // The server's own restore refuses it the same way, and serves nothing.
    const serverTarget = path.join(dir, `server-${path.basename(damaged)}`);
    const started = await runServerToExit(['--listen', '127.0.0.1:0', '--data-dir', serverTarget, '--restore-from', damaged]);
    expect(started.code).not.toBe(0);
    expect(started.stdout).not.toContain('listening');
    expect(started.stderr).toMatch(/^kv-server: .+\n$/); // one line, no stack trace
    expect(existsSync(serverTarget) ? readdirSync(serverTarget) : []).toEqual([]);
  }
});

/**
 * A backup file whose checksum matches but whose content no kv server wrote (a hand-edited file checksummed again,
 * another tool's): header, leases, entries and trailer framed as the file format says.
 */
function craftBackup(file: string, leases: BackupLease[], entries: Array<Partial<BackupEntry> & { key: string }>): void {
  const full = entries.map((e) => ({ valueJson: '1', createRevision: 1, modRevision: 1, version: 1, lease: 0, ...e }));
  const messages = [
    { header: { formatVersion: 1, revision: 5, keyCount: full.length, leaseCount: leases.length, createdAtMs: Date.now() } },
    ...(leases.length > 0 ? [{ leases: { leases } }] : []),
    { entries: { entries: full } },
  ];
  const frames = messages.map((m) => {
    const bytes = Buffer.from(BackupResponse.encode(BackupResponse.fromPartial(m)).finish());
    const length = Buffer.alloc(4);
    length.writeUInt32LE(bytes.length);
    return Buffer.concat([length, bytes]);
  });
  const sha256 = createHash('sha256').update(Buffer.concat(frames)).digest();
  const trailer = Buffer.from(BackupResponse.encode(BackupResponse.fromPartial({ trailer: { sha256 } })).finish());
  const length = Buffer.alloc(4);
  length.writeUInt32LE(trailer.length);
  writeFileSync(file, Buffer.concat([Buffer.from('KVBACKUP', 'latin1'), ...frames, length, trailer]));
}

test('a backup whose checksum matches but that holds what no store can (a value not JSON, an empty one, a private lease on two keys) is refused whole: exit 9, one line', async () => {
  const dir = makeTempDir('kv-backup-crafted-');
  const cases: Array<[string, BackupLease[], Array<Partial<BackupEntry> & { key: string }>, RegExp]> = [
    ['not-json', [], [{ key: 'a', valueJson: 'not json{' }, { key: 'b' }], /the value of key "a" is not JSON/],
    ['nan', [], [{ key: 'a', valueJson: 'NaN' }], /the value of key "a" is not JSON/],
    ['empty', [], [{ key: 'a', valueJson: '' }], /the value of key "a" is empty/],
    ['deep', [], [{ key: 'a', valueJson: '['.repeat(60) + ']'.repeat(60) }], /the value of key "a" is nested too deeply/],
    [
      'private-shared',
      [{ id: 7, ttlMs: 60_000, private: true }],
      [
        { key: 'a', lease: 7 },
        { key: 'b', lease: 7 },
      ],
      /keys "a" and "b" both name lease 7, a private lease/,
    ],
  ];
  const server = await startServer();
  servers.push(server);
  for (const [name, leases, entries, why] of cases) {
    const file = path.join(dir, `${name}.backup`);
    craftBackup(file, leases, entries);
    const target = path.join(dir, `restored-${name}`);
    const restored = await runKvctl(['restore', file, '--data-dir', target]);
    expect({ code: restored.code, stderr: restored.stderr }).toEqual({ code: 9, stderr: expect.stringMatching(why) });
    expect(restored.stderr).toMatch(/^kvctl: [^\n]*is damaged[^\n]*nothing was restored\n$/);
    expect(existsSync(target) ? readdirSync(target) : []).toEqual([]);

    const serverTarget = path.join(dir, `server-${name}`);
    const started = await runServerToExit(['--listen', '127.0.0.1:0', '--data-dir', serverTarget, '--restore-from', file]);
    expect(started.code).toBe(1);
    expect(started.stderr).toMatch(/^kv-server: [^\n]+\n$/);
    expect(started.stderr).toMatch(why);
    expect(existsSync(serverTarget) ? readdirSync(serverTarget) : []).toEqual([]);

    const imported = await runKvctl(['import', file], { env: { KV_ENDPOINTS: server.address } });
    expect({ code: imported.code, stderr: imported.stderr }).toEqual({ code: 9, stderr: expect.stringMatching(why) });
    expect(imported.stderr).toMatch(/nothing was imported\n$/);
  }
  const kv = new KvClient(server.address);
  try {
    expect((await kv.listPage({ prefix: '' })).entries).toEqual([]);
  } finally {
    kv.close();
  }
});

test('restore refuses a data directory that is not empty, and kv-server --restore-from builds and serves one', async () => {
  const server = await startServer();
  servers.push(server);
  const kv = new KvClient(server.address);
  const dir = makeTempDir('kv-backup-target-');
  const file = path.join(dir, 'kv.backup');
  try {
    await kv.set('a', 'from the backup');
    await kv.backup(file);
  } finally {
    kv.close();
  }
  const busy = path.join(dir, 'busy');
  const first = await runKvctl(['restore', file, '--data-dir', busy]);
  expect(first.code).toBe(0);
  const second = await runKvctl(['restore', file, '--data-dir', busy]);
  expect(second.code).toBe(2);
  expect(second.stderr).toMatch(/^kvctl: .*not empty.*nothing was restored/);

  const served = await startServer({ args: ['--restore-from', file], dataDir: path.join(dir, 'served') });
  servers.push(served);
  const client = new KvClient(served.address);
  try {
    expect((await client.get('a'))?.value).toBe('from the backup');
  } finally {
    client.close();
  }
});

test('kv-server --restore-from into a directory that cannot be made says so in one line (no stack), exit 1, nothing restored', async () => {
  const dir = makeTempDir('kv-restore-target-');
  const file = path.join(dir, 'kv.backup');
  const server = await startServer();
  servers.push(server);
  const kv = new KvClient(server.address);
  try {
    await kv.set('a', 1);
    await kv.backup(file);
  } finally {
    kv.close();
  }
  // Under a regular file: ENOTDIR.
  const target = path.join(file, 'data');
  const { code, stderr } = await runServerToExit(['--listen', '127.0.0.1:0', '--data-dir', target, '--restore-from', file]);
  expect(code).toBe(1);
  expect(stderr).toMatch(/^kv-server: --restore-from: cannot restore into .*: ENOTDIR: .*; nothing was restored\n$/);
});

test('SIGTERM while kv-server --restore-from writes stops it within moments, removes what it wrote, exit 0 and one line', async () => {
  const dir = makeTempDir('kv-restore-stop-');
  const source = path.join(dir, 'source');
  // A backup large enough that writing it takes a while: 150,000 keys of about 300 bytes, written in-process.
  const store = await openFileStore({ dataDir: source, fsync: 'never' });
  const value = 'x'.repeat(300);
  for (let i = 0; i < 150_000; i += 1000) {
    await Promise.all(Array.from({ length: 1000 }, (_, j) => store.set(`k/${String(i + j).padStart(7, '0')}`, value)));
  }
  await store.close();
  const file = path.join(dir, 'big.backup');
  const server = await startServer({ dataDir: source });
  const kv = new KvClient(server.address);
  try {
    await kv.backup(file);
  } finally {
    kv.close();
    await server.stop();
  }

  const target = path.join(dir, 'target');
  const child = spawnServer(['--listen', '127.0.0.1:0', '--data-dir', target, '--restore-from', file]);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  // Once the checkpoint file is being written (the second pass), not during the first pass, which does not yield.
  await pollUntil(
    'the restore to write its checkpoint',
    () => (existsSync(target) && readdirSync(target).some((name) => name.endsWith('.snap.tmp')) ? true : undefined),
    30_000,
  );
  const asked = Date.now();
  child.kill('SIGTERM');
  expect(await exited).toBe(0);
  const tookMs = Date.now() - asked;
  expect(stderr).toMatch(/^kv-server: stopped by SIGTERM while restoring from .*big\.backup \(nothing was restored, nothing served\)\n$/);
  // The directory it made is gone, not left half written (nor whole: a stop means nothing restored).
  expect(existsSync(target)).toBe(false);
  process.stdout.write(`restore stopped ${tookMs} ms after SIGTERM\n`);
}, 120_000);

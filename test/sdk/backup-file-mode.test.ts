/**
 * kv.backup(FILE): the file is its owner's alone (0600) under any umask and
 * over a file of any mode; an onProgress that throws stops the backup with
 * its error and leaves nothing behind (kvctl stops a backup on Ctrl-C so).
 */
import { chmodSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { KvClient, verifyBackupFile } from '@kv/client';
import { startServer, type RunningServer } from '../support/server-process';
import { makeTempDir } from '../support/temp-dirs';

let server: RunningServer;
let kv: KvClient;
let dir: string;

beforeAll(async () => {
  server = await startServer();
  kv = new KvClient(server.address);
  for (let i = 0; i < 3; i++) await kv.set(`m/${i}`, 'x'.repeat(100_000));
  dir = makeTempDir('sdk-backup-mode-');
});

afterAll(async () => {
  kv.close();
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

const modeOf = (file: string): number => statSync(file).mode & 0o777;

test('a new backup is 0600 under umask 022 and 000; one over a 0644 file makes it 0600', async () => {
  const before = process.umask(0o022);
  try {
    const fresh = path.join(dir, 'fresh.backup');
    await kv.backup(fresh);
    expect(modeOf(fresh)).toBe(0o600);

    const open = path.join(dir, 'open.backup');
    writeFileSync(open, 'older');
    chmodSync(open, 0o644);
    await kv.backup(open);
    expect(modeOf(open)).toBe(0o600);

    process.umask(0o000);
    const permissive = path.join(dir, 'permissive.backup');
    await kv.backup(permissive);
    expect(modeOf(permissive)).toBe(0o600);
    expect(verifyBackupFile(permissive).keyCount).toBe(3);
  } finally {
    process.umask(before);
  }
});

test('an onProgress that throws stops the backup with its error; the older file stays, nothing else is left', async () => {
  const sub = makeTempDir('sdk-backup-stop-');
  try {
    const file = path.join(sub, 'kv.backup');
    writeFileSync(file, 'the older backup');
    const stop = new Error('stopped');
    await expect(
      kv.backup(file, {
        onProgress: () => {
          throw stop;
        },
      }),
    ).rejects.toBe(stop);
    expect(readdirSync(sub)).toEqual(['kv.backup']);
    expect(readFileSync(file, 'utf8')).toBe('the older backup');
  } finally {
    rmSync(sub, { recursive: true, force: true });
  }
});

test("a path that cannot be written fails with the file system's error, naming the path given (not the file written beside it)", async () => {
  const missing = path.join(dir, 'no-such-dir', 'b.backup');
  const error = await kv.backup(missing).then(
    () => undefined,
    (e: unknown) => e as NodeJS.ErrnoException,
  );
  expect(error).toMatchObject({ code: 'ENOENT', path: missing });
  expect(error?.message).toBe(`ENOENT: no such file or directory: cannot create ${missing}`);
  await expect(kv.backup(dir)).rejects.toMatchObject({ code: 'EISDIR', message: `${dir} is a directory` });
});

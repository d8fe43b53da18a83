/**
 * A real server on a full disk (a small tmpfs): writes are refused as
 * UNAVAILABLE and health says NOT_SERVING while reads go on; once space is
 * freed, writes resume and health returns to SERVING without a restart.
 * A server started on a full or read-only disk exits 1 with one line that
 * says so in plain words and names the file.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { KvClient, KvError, status } from '@kv/client';
import { mountSmallDisk, testWithSmallDisk } from '../support/disk-faults';
import { healthOf } from '../support/health';
import { runServerToExit, startServer } from '../support/server-process';
import { pollUntil } from '../support/temp-dirs';

const testSmallDisk = testWithSmallDisk();

testSmallDisk(
  'a full disk refuses writes (UNAVAILABLE, health NOT_SERVING) until space is freed, then writes resume by themselves',
  async () => {
    const disk = mountSmallDisk(2 * 1024 * 1024);
    const server = await startServer({ dataDir: path.join(disk.dir, 'data'), env: { KV_LOG_LEVEL: 'info' } });
    const kv = new KvClient(server.address, { retry: { attempts: 1 } });
    try {
      await kv.set('before', 1);
      // Expires while the disk is full: its expiry waits for the store, quietly (no warning with a stack at every try).
      const lease = await kv.grantLease(500);
      await kv.set('leased', 1, { lease: lease.id });
      const filler = path.join(disk.dir, 'filler');
      const fd = fs.openSync(filler, 'w');
      try {
        for (let at = 0; ; at += 4096) fs.writeSync(fd, Buffer.alloc(4096), 0, 4096, at);
      } catch (err) {
        expect(err).toMatchObject({ code: 'ENOSPC' });
      } finally {
        fs.closeSync(fd);
      }

      const big = 'x'.repeat(64 * 1024);
      const refused = await kv.set('big', big).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(KvError);
      expect(refused).toMatchObject({ code: status.UNAVAILABLE, reason: 'FAILED' });
      expect((refused as KvError).message).toContain('ENOSPC');
      expect((refused as KvError).message).toContain('writes resume by themselves once the disk accepts them');
      expect((await kv.get('before'))?.value).toBe(1);
      await pollUntil('health to say NOT_SERVING', async () => ((await healthOf(server.address)) === 'NOT_SERVING' ? true : undefined));
      // Still full: a heal attempt fails and is logged.
      await pollUntil('a failed heal attempt', () => (server.output().includes('could not resume writes yet') ? true : undefined));
      expect(await healthOf(server.address)).toBe('NOT_SERVING');
      // The store's failure is one line, its error without a stack; so is each failed heal attempt.
      const log = server
        .output()
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as { msg: string; err?: Record<string, unknown> });
      const failures = log.filter((line) => line.msg.startsWith('the store stopped accepting writes'));
      expect(failures).toEqual([expect.objectContaining({ err: expect.objectContaining({ code: 'ENOSPC', syscall: 'write' }) })]);
      const attempts = log.filter((line) => line.msg.startsWith('could not resume writes yet'));
      for (const line of [...failures, ...attempts]) expect(line.err).not.toHaveProperty('stack');
      // Health's line names the failure once, without the I/O error again (the store's line has it).
      const health = log.filter((line) => line.msg.startsWith('the store cannot take writes now'));
      expect(health).toEqual([expect.not.objectContaining({ err: expect.anything() })]);
      expect(health[0]).toMatchObject({ failure: { code: 'FAILED', message: expect.stringContaining('ENOSPC') as string } });

      await pollUntil('the lease to expire', async () => ((await kv.leaseInfo(lease.id))?.remainingMs === 0 ? true : undefined));
      expect((await kv.get('leased'))?.value).toBe(1);
      fs.rmSync(filler);
      await pollUntil(
        'health to say SERVING again',
        async () => ((await healthOf(server.address)) === 'SERVING' ? true : undefined),
        30_000,
      );
      // The key went once writes resumed (its delete took revision 3).
      await pollUntil('the leased key expired', async () => ((await kv.get('leased')) === undefined ? true : undefined));
      expect(await kv.set('big', big)).toBe(4);
      expect(server.output()).not.toContain('lease expiry failed');
      expect(server.output()).toContain('the store takes writes again; health is SERVING');
    } finally {
      kv.close();
      await server.stop();
      disk.unmount();
    }
  },
);

/** Fills the disk, then frees `pages` pages of 4 KiB (tmpfs counts its space in pages). */
function fillLeaving(dir: string, pages: number): void {
  const filler = path.join(dir, 'filler');
  const fd = fs.openSync(filler, 'w');
  let size = 0;
  try {
    for (;;) size += fs.writeSync(fd, Buffer.alloc(4096), 0, 4096, size);
  } catch (err) {
    expect(err).toMatchObject({ code: 'ENOSPC' });
  } finally {
    fs.closeSync(fd);
  }
  fs.truncateSync(filler, Math.max(0, size - pages * 4096));
}

testSmallDisk('a server started on a full disk exits 1 with one line: the disk is full, which file, what to do', async () => {
  const disk = mountSmallDisk(2 * 1024 * 1024);
  try {
    // No room at all (LOCK's owner record), then room for that only (the first log), then for that too (the history id):
    // each write that fails is named.
    for (const pages of [0, 1, 2]) {
      const dataDir = path.join(disk.dir, `data-${pages}`);
      fillLeaving(disk.dir, pages);
      const result = await runServerToExit(['--listen', '127.0.0.1:0', '--data-dir', dataDir]);
      expect(result.code).toBe(1);
      const escaped = dataDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      expect(result.stderr.trim()).toMatch(
        new RegExp(
          `^kv-server: cannot open the store in ${escaped}: the disk is full \\(ENOSPC: no space left on device, \\w+ '${escaped}/[^']+'\\): ` +
            'free space on it, then start the server again$',
        ),
      );
      fs.rmSync(path.join(disk.dir, 'filler'));
    }
  } finally {
    disk.unmount();
  }
});

testSmallDisk('a server started on a read-only file system exits 1 with one line saying so and what to do', async () => {
  const disk = mountSmallDisk(2 * 1024 * 1024);
  try {
    const dataDir = path.join(disk.dir, 'data');
    fs.mkdirSync(dataDir);
    execFileSync('mount', ['-o', 'remount,ro', disk.dir]);
    const result = await runServerToExit(['--listen', '127.0.0.1:0', '--data-dir', dataDir]);
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toBe(
      `kv-server: cannot open the store in ${dataDir}: the file system is read-only (EROFS: read-only file system, mkdir '${dataDir}/LOCK'): ` +
        'remount it read-write, or give another --data-dir',
    );
  } finally {
    disk.unmount();
  }
});

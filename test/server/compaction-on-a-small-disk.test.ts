/**
 * A small store of large values, overwritten, on a disk too small for the
 * checkpoint to carry the watch history window (bounded by changes and
 * memory, it is here many times the live data): compaction writes its
 * checkpoint without the history, frees the dead records, and the store
 * never fills its disk with its own garbage. Before, the checkpoint failed
 * ENOSPC, the logs grew until the disk was full, and every write failed
 * from then on, for good: nothing else was there to free.
 */
import path from 'node:path';
import { KvClient } from '@kv/client';
import { mountSmallDisk, testWithSmallDisk } from '../support/disk-faults';
import { startServer } from '../support/server-process';
import { pollUntil } from '../support/temp-dirs';

const testSmallDisk = testWithSmallDisk();

testSmallDisk(
  'overwriting 2 MB of values 60 MB over on a 40 MB disk never fails: checkpoints leave the history out, and say so',
  async () => {
    const disk = mountSmallDisk(40 * 1024 * 1024);
    const dataDir = path.join(disk.dir, 'data');
    let server = await startServer({ dataDir, env: { KV_LOG_LEVEL: 'info' } });
    let kv = new KvClient(server.address, { retry: { attempts: 1 } });
    try {
      const value = 'v'.repeat(100_000);
      let last = 0;
      for (let i = 0; i < 600; i++) last = await kv.set(`n/${i % 20}`, `${value}${i}`);
      await pollUntil('a compaction that finished', () => (server.output().includes('"msg":"compaction finished"') ? true : undefined));
      const warnings = server
        .output()
        .split('\n')
        .filter((line) => line.includes('this checkpoint carries no watch history'));
      expect(warnings.length).toBeGreaterThan(0);
      expect(JSON.parse(warnings[0])).toMatchObject({ level: 40, msg: expect.stringMatching(/get COMPACTED$/) as unknown });
      expect(server.output()).not.toContain('compaction failed');
      expect((await kv.get('n/19'))?.value).toBe(`${value}599`);
      // The window in memory is whole: a watch from recent revisions is served.
      for await (const event of kv.watch({ prefix: 'n/', startRevision: last - 20 })) {
        expect(event.revision).toBe(last - 20);
        break;
      }
      kv.close();
      await server.stop();

      // After a restart, history starts after the last checkpoint: an older start is COMPACTED, never a silent gap.
      server = await startServer({ dataDir, env: { KV_LOG_LEVEL: 'info' } });
      kv = new KvClient(server.address, { retry: { attempts: 1 } });
      expect((await kv.get('n/0'))?.value).toBe(`${value}580`);
      const resumed = await (async () => {
        for await (const _ of kv.watch({ prefix: 'n/', startRevision: 2 })) return 'an event';
        return 'no event';
      })().catch((error: unknown) => error);
      expect(resumed).toMatchObject({ reason: 'COMPACTED' });
    } finally {
      kv.close();
      await server.stop();
      disk.unmount();
    }
  },
);

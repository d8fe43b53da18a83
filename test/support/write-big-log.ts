/**
 * Writes a data directory whose log takes seconds to replay, in a fraction
 * of that time: the log writer appends large batches of sets directly (no
 * commit loop, no fsync), as a long-running server would have written them.
 */
import { silentLogger } from '../../src/logger';
import type { SetChange } from '../../src/store/change';
import { LogWriter, createLogFile } from '../../src/store/file/log-writer';

/** `records` sets of distinct keys with small values, in batches of 10 000; returns the last revision. */
export async function writeBigLog(dataDir: string, records: number): Promise<number> {
  const writer = new LogWriter(dataDir, createLogFile(dataDir, 1, 0), 'never', 1000, silentLogger);
  const valueJson = JSON.stringify({ padding: 'p'.repeat(40) });
  let revision = 0;
  while (revision < records) {
    const batch: SetChange[] = [];
    for (let i = 0; i < 10_000 && revision < records; i++) {
      revision++;
      batch.push({
        type: 'set',
        key: `key/${revision}`,
        revision,
        entry: { valueJson, createRevision: revision, modRevision: revision, version: 1, lease: 0 },
        prev: undefined,
      });
    }
    writer.append(batch);
  }
  await writer.close();
  return revision;
}

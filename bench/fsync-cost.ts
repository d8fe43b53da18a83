/**
 * What one durable append costs on this disk: a 100-byte write followed by
 * fdatasync, the same pair kv's log writer issues per group commit, and
 * like it written over zeros written ahead (so the file's size does not
 * change; src/store/file/log-writer.ts). Set at c=1 cannot be faster than
 * this, so it is the floor its p50 is judged by.
 */
import { closeSync, fdatasyncSync, openSync, writeSync } from 'node:fs';
import path from 'node:path';
import { PREALLOCATE_BYTES } from '../src/store/file/log-writer';
import { makeTempDir } from './servers';
import { summarize, type Summary } from './stats';

export function measureFsyncCost(samples = 1000, recordBytes = 100): Summary {
  // Same temp root as the servers' data directories, so the same filesystem.
  const temp = makeTempDir('fsync');
  const fd = openSync(path.join(temp.dir, 'append.log'), 'w');
  const record = Buffer.alloc(recordBytes, 0x61);
  const millis: number[] = [];
  try {
    const zeros = Buffer.alloc(Math.max(PREALLOCATE_BYTES, samples * recordBytes));
    writeSync(fd, zeros, 0, zeros.length, 0);
    fdatasyncSync(fd);
    for (let sample = 0; sample < samples; sample++) {
      const started = process.hrtime.bigint();
      writeSync(fd, record, 0, recordBytes, sample * recordBytes);
      fdatasyncSync(fd);
      millis.push(Number(process.hrtime.bigint() - started) / 1e6);
    }
  } finally {
    closeSync(fd);
    temp.remove();
  }
  return summarize(millis);
}

/** Helpers shared by the file engine's test files (file-store*.test.ts). */
import fs from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import pino from 'pino';
import { type FileStore, openFileStore } from '../../src/store/file';
import type { WatchBatch, WatchEvent } from '../../src/store/key-value-store';
import { BATCH_RECORD_SIZE, FILE_HEADER_SIZE, RecordType } from '../../src/store/file/record-codec';

/** A pino logger that keeps its lines in memory, to assert on warnings. */
export function capturingLogger(level = 'info'): { logger: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level }, { write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { logger, lines };
}

export function logFiles(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((n) => n.endsWith('.log'))
    .sort();
}

/** Where each batch of a log starts and ends, and where its records start (docs/storage-format.md). */
export function batchesOf(bytes: Buffer): Array<{ start: number; end: number; records: number[] }> {
  const batches: Array<{ start: number; end: number; records: number[] }> = [];
  let at = FILE_HEADER_SIZE;
  while (at < bytes.length) {
    expect(bytes[at + 8]).toBe(RecordType.Batch);
    const end = at + BATCH_RECORD_SIZE + bytes.readUInt32LE(at + 17);
    const records: number[] = [];
    for (let r = at + BATCH_RECORD_SIZE; r < end; r += 8 + bytes.readUInt32LE(r + 4)) records.push(r);
    batches.push({ start: at, end, records });
    at = end;
  }
  return batches;
}

/** Where a log's last batch ends: the zeros the log writer keeps written ahead of it are not part of the log. */
export function logEnd(file: string): number {
  const bytes = fs.readFileSync(file);
  let at = FILE_HEADER_SIZE;
  while (at + BATCH_RECORD_SIZE <= bytes.length && bytes[at + 8] === RecordType.Batch)
    at += BATCH_RECORD_SIZE + bytes.readUInt32LE(at + 17);
  return Math.min(at, bytes.length);
}

/** The bytes of the data files, each log up to its last batch; a file a compaction removes (or renames) as they are counted counts no more. */
export function dataBytes(dir: string): number {
  let n = 0;
  for (const f of fs.readdirSync(dir)) {
    const file = path.join(dir, f);
    try {
      if (f.endsWith('.log')) n += logEnd(file);
      else if (/\.(snap|tmp)$/.test(f)) n += fs.statSync(file).size;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  return n;
}

export async function dump(store: FileStore): Promise<Array<[string, unknown, number, number, number]>> {
  const out: Array<[string, unknown, number, number, number]> = [];
  for (const key of (await store.listKeys()).keys) {
    const e = await store.get(key);
    if (e) out.push([key, e.value, e.createRevision, e.modRevision, e.version]);
  }
  return out;
}

/**
 * Rewrites the format version in the header of `dataDir`'s only log (and
 * the header's CRC), as if an older build had written it; returns the log's
 * path and its bytes as rewritten.
 */
export function rewriteLogVersion(dataDir: string, version: number): { logPath: string; bytes: Buffer } {
  const [log] = fs.readdirSync(dataDir).filter((f) => f.endsWith('.log'));
  const logPath = path.join(dataDir, log);
  const bytes = fs.readFileSync(logPath);
  bytes.writeUInt16LE(version, 8);
  bytes.writeUInt32LE(crc32(bytes.subarray(0, 28)), 28);
  fs.writeFileSync(logPath, bytes);
  return { logPath, bytes };
}

/** Every event a watch gives up to and including `revision`. */
export async function eventsThrough(watch: { next(): Promise<WatchBatch> }, revision: number): Promise<WatchEvent[]> {
  const events: WatchEvent[] = [];
  for (let at = 0; at < revision;) {
    const batch = await watch.next();
    events.push(...batch.events);
    at = batch.revision;
  }
  return events;
}

/** The reopened directory holds exactly what the store served before it closed. */
export async function expectReopenEquals(store: FileStore, dataDir: string): Promise<void> {
  const served = await dump(store);
  await store.close();
  const again = await openFileStore({ dataDir });
  expect(await dump(again)).toEqual(served);
  await again.close();
}

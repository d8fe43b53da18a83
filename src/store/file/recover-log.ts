/**
 * Rebuilds the store state from a data directory at open.
 *
 * Replay starts at the newest snapshot (a complete one: snapshots are only
 * renamed into place after an fsync) and applies every later log in sequence
 * order. Only the tail of the last file can be legitimately damaged (a crash
 * mid-append); it is truncated and logged. Damage anywhere else, or damage
 * followed by readable records, refuses to open: nothing is dropped silently.
 */
import fs from 'node:fs';
import type { Logger } from '../../logger';
import { CorruptDataError } from '../errors';
import { type DataFile, dataFilePath, listDataDir } from './data-dir-files';
import { FILE_HEADER_SIZE, FRAME_SIZE, FileKind, MIN_RECORD_SIZE, RecordType, decodeFileHeader, emptyRecord, encodeFileHeader, readRecord } from './record-codec';
import type { IndexEntry } from './store-index';

export interface RecoveredState {
  entries: Map<string, IndexEntry>;
  revision: number;
  /** Files kept, in sequence order, with their sizes after any truncation. */
  files: Array<DataFile & { size: number }>;
  /** Files made obsolete by the newest snapshot, and leftover temp files: safe to delete. */
  obsolete: string[];
}

/** Large sequential reads keep replay to a few syscalls per file. */
const CHUNK_BYTES = 16 * 1024 * 1024;
/** How far past a bad record recovery looks for readable records before deciding it is a torn tail. */
const TAIL_SCAN_BYTES = 16 * 1024 * 1024;

export function recoverDataDir(dir: string, logger: Logger): RecoveredState {
  const { files, temps } = listDataDir(dir);
  let first = 0;
  for (let i = files.length - 1; i >= 0; i--) {
    if (files[i].kind === FileKind.Snapshot) {
      first = i;
      break;
    }
  }
  const state: RecoveredState = {
    entries: new Map(),
    revision: 0,
    files: [],
    obsolete: [...temps, ...files.slice(0, first).map((f) => f.name)],
  };
  const replayed = files.slice(first);
  for (let i = 0; i < replayed.length; i++) {
    const file = replayed[i];
    // Only a log can have a torn tail: a snapshot is complete before it gets its name.
    const tornTailAllowed = i === replayed.length - 1 && file.kind === FileKind.Log;
    const size = replayFile(dir, file, tornTailAllowed, state, logger);
    state.files.push({ ...file, size });
  }
  return state;
}

function replayFile(dir: string, file: DataFile, isLast: boolean, state: RecoveredState, logger: Logger): number {
  const filePath = dataFilePath(dir, file.name);
  const fd = fs.openSync(filePath, isLast ? 'r+' : 'r');
  try {
    const fileSize = fs.fstatSync(fd).size;
    const headerBuf = Buffer.alloc(FILE_HEADER_SIZE);
    const headerRead = fs.readSync(fd, headerBuf, 0, FILE_HEADER_SIZE, 0);
    const header = decodeFileHeader(headerBuf.subarray(0, headerRead));
    if (typeof header === 'string') {
      // A log is created by writing and syncing its header before any record,
      // so a last log no longer than a header died while being created.
      if (isLast && file.kind === FileKind.Log && fileSize <= FILE_HEADER_SIZE) {
        logger.warn({ file: filePath, reason: header }, 'rewriting the header of a log file cut short at creation');
        fs.ftruncateSync(fd, 0);
        fs.writeSync(fd, encodeFileHeader({ kind: FileKind.Log, baseRevision: state.revision }), 0, FILE_HEADER_SIZE, 0);
        fs.fdatasyncSync(fd);
        return FILE_HEADER_SIZE;
      }
      throw new CorruptDataError(filePath, 0, header);
    }
    if (header.kind !== file.kind) throw new CorruptDataError(filePath, 0, 'file header kind does not match its name');
    if (header.kind === FileKind.Snapshot) state.entries.clear();
    if (header.baseRevision > state.revision) state.revision = header.baseRevision;
    return replayRecords(fd, filePath, fileSize, isLast, state, logger);
  } finally {
    fs.closeSync(fd);
  }
}

/** Applies the records after the header; returns the file size to keep. */
function replayRecords(
  fd: number,
  filePath: string,
  fileSize: number,
  isLast: boolean,
  state: RecoveredState,
  logger: Logger,
): number {
  let buf = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, Math.max(fileSize - FILE_HEADER_SIZE, 1)));
  /** File offset of buf[0]. */
  let bufStart = FILE_HEADER_SIZE;
  let bufLen = 0;
  let pos = 0;
  const entries = state.entries;
  const record = emptyRecord();
  for (;;) {
    const result = readRecord(buf, pos, bufLen, record);
    if (result === undefined) {
      if (record.revision > state.revision) state.revision = record.revision;
      if (record.type === RecordType.Set) {
        entries.set(record.key, {
          valueJson: record.valueJson,
          createRevision: record.createRevision,
          modRevision: record.revision,
          version: record.version,
        });
      } else if (record.type === RecordType.Delete) {
        entries.delete(record.key);
      } else if (record.key === '') {
        entries.clear();
      } else {
        const prefix = record.key;
        for (const key of entries.keys()) if (key.startsWith(prefix)) entries.delete(key);
      }
      pos += record.size;
      continue;
    }
    const offset = bufStart + pos;
    const pending = bufLen - pos;
    const needed = pending >= FRAME_SIZE ? FRAME_SIZE + buf.readUInt32LE(pos + 4) : FRAME_SIZE;
    if (result.short && bufStart + bufLen < fileSize && needed <= fileSize - offset) {
      // The record continues past what is buffered: keep its start, read more.
      if (needed > buf.length) {
        const bigger = Buffer.allocUnsafe(needed);
        buf.copy(bigger, 0, pos, bufLen);
        buf = bigger;
      } else {
        buf.copy(buf, 0, pos, bufLen);
      }
      bufStart = offset;
      bufLen = pending;
      pos = 0;
      const want = Math.min(buf.length - bufLen, fileSize - (bufStart + bufLen));
      bufLen += readFully(fd, buf, bufLen, want, bufStart + bufLen);
      continue;
    }
    if (offset === fileSize) return fileSize;
    if (!isLast) throw new CorruptDataError(filePath, offset, result.reason);
    const notTorn = whyNotATornTail(fd, offset + 1, fileSize, state.revision);
    if (notTorn !== undefined) throw new CorruptDataError(filePath, offset, `${result.reason}, ${notTorn}`);
    logger.warn(
      { file: filePath, offset, droppedBytes: fileSize - offset, reason: result.reason },
      `truncating a torn final record in ${filePath} at byte offset ${offset}`,
    );
    fs.ftruncateSync(fd, offset);
    fs.fdatasyncSync(fd);
    return offset;
  }
}

function readFully(fd: number, buf: Buffer, at: number, length: number, position: number): number {
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, buf, at + done, length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

/**
 * Looks for a record that reads cleanly (and is newer than anything replayed)
 * after a bad one. Garbage passes the CRC with odds of 1 in 2^32, so a hit
 * means real records follow the damage and it is not a torn tail. Returns why
 * it is not a torn tail, or undefined if it may be one.
 */
function whyNotATornTail(fd: number, from: number, fileSize: number, revision: number): string | undefined {
  if (fileSize - from > TAIL_SCAN_BYTES) {
    return `and ${fileSize - from} bytes follow, more than a torn final write can leave`;
  }
  const rest = Buffer.allocUnsafe(Math.max(fileSize - from, 0));
  const n = readFully(fd, rest, 0, rest.length, from);
  const record = emptyRecord();
  for (let i = 0; i + MIN_RECORD_SIZE <= n; i++) {
    if (readRecord(rest, i, n, record) === undefined && record.revision > revision) {
      return `and a readable record follows at byte offset ${from + i}, so this is not a torn tail`;
    }
  }
  return undefined;
}

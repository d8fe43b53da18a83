/**
 * Rebuilds the store state from a data directory at open.
 *
 * Replay starts at the newest snapshot (a complete one: snapshots are only
 * renamed into place after an fsync) and applies every later log in sequence
 * order. A snapshot of format 5 is a checkpoint (read-checkpoint.ts): its
 * keys become the index's base table as they are read, and the history it
 * carries starts the history window; one of format 3 or 4 is replayed
 * record by record. A log is a sequence of batches, each a BATCH record and the records
 * written with one append; a batch is checked whole before any of it is
 * applied, so a batch counts entirely or not at all.
 *
 * Only the newest log can legitimately be damaged, and only where it was
 * never known durable: a power cut can lose any pages written since the last
 * completed fdatasync, in any order. Each BATCH record says how far the log
 * was durable when its batch was written. So damage that no later readable
 * BATCH record vouches for is a torn tail: the log is truncated at the start
 * of the damaged batch (everything after it was unsynced too) and a warning
 * names file and offset. Damage that a later batch proves was durable, or
 * damage in any other file, refuses to open: nothing is dropped silently.
 * Only zeros from a batch boundary to the end of the newest log are its
 * unwritten end (the log writer writes zeros ahead of its batches): cut off
 * too, logged at info level, not as a warning.
 *
 * Every logged change goes through the same StoreIndex.apply as a live
 * write, and into the history window, so watchers can resume across a
 * restart from any revision the window still holds. Replay yields to the
 * event loop every 50 ms of work (so the directory lock keeps being
 * refreshed, and a signal can stop it) and stops if its AbortSignal fires.
 *
 * A BATCH record counts only if it carries the log's file nonce (random,
 * from the file header, never shown to a client): a client can put a
 * well-formed, correctly CRC'd BATCH record inside a key or value, but
 * cannot guess the nonce, so it can neither vouch for damage (turning a torn
 * tail into a refusal to open) nor pass for a batch boundary.
 */
import fs from 'node:fs';
import type { Logger } from '../../logger';
import { CorruptDataError } from '../errors';
import { type DataFile, dataFilePath, listDataDir, syncDirectory } from './data-dir-files';
import { readCheckpoint } from './read-checkpoint';
import {
  BATCH_RECORD_SIZE,
  CHECKPOINT_VERSION,
  type DecodedRecord,
  FILE_HEADER_SIZE,
  FRAME_SIZE,
  type FileHeader,
  FileKind,
  RecordType,
  batchNonceIs,
  checkRecord,
  decodeChange,
  decodeFileHeader,
  decodeCheckedRecord,
  emptyRecord,
  isOtherFormatVersion,
  readRecord,
  typeNewerThanFile,
  readU64,
} from './record-codec';

export interface RecoverOptions {
  history: HistoryLimits;
  /**
   * How the window packs its older changes (HistoryWindow.packWith), from
   * the first change replayed on: packed as they come, the changes die young
   * instead of all living until replay ends.
   */
  pack?: PackChanges;
  /** Takes back the packed chunks the window lets go of (HistoryWindow.packWith). */
  recycle?: RecyclePacked;
  /** Stops replay (rejecting with its reason) at the next yield. */
  signal?: AbortSignal;
}

/**
 * Replay yields to the event loop after this much work (ms), so a stop
 * signal is heard within it: counted in time, since the cost per byte
 * varies tenfold between large and small records. The clock is read once
 * per CLOCK_CHECK_BYTES replayed.
 */
const YIELD_EVERY_MS = 50;
const CLOCK_CHECK_BYTES = 64 * 1024;
import { type KeyChange, type StoredEntry, isKeyChange } from '../change';
import { HistoryWindow, type HistoryLimits, type PackChanges, type PackedChanges, type RecyclePacked } from '../feed/history-window';
import { StoreIndex } from './store-index';

export interface RecoveredState {
  /** The index as of the last complete batch, its ordered tree built. */
  index: StoreIndex;
  /** The changes replayed from the logs, as far back as the limits allow. */
  window: HistoryWindow;
  revision: number;
  /** Files kept, in sequence order, with their sizes after any truncation; a checkpoint with its bytes of history. */
  files: Array<DataFile & { size: number; checkpoint?: { historyBytes: number } }>;
  /**
   * Safe to delete, and to be deleted before a new log is created: files made
   * obsolete by the newest snapshot, leftover temp files, and trailing logs
   * that hold no record.
   */
  obsolete: string[];
}

/** Large sequential reads keep replay to a few syscalls per file. */
const CHUNK_BYTES = 16 * 1024 * 1024;

export async function recoverDataDir(dir: string, logger: Logger, options: RecoverOptions): Promise<RecoveredState> {
  const { files, temps } = listDataDir(dir);
  // A store always has a log beside a checkpoint being written; a snapshot being written and nothing else is a
  // restore that did not finish (kvctl restore, --restore-from killed part way): opened, it would serve an empty store.
  const unfinished = temps.find((name) => name.startsWith('snap-'));
  if (files.length === 0 && unfinished !== undefined) {
    throw new CorruptDataError(
      dataFilePath(dir, unfinished),
      0,
      'the directory holds only a snapshot that was never finished, as a restore that was stopped part way leaves it; ' +
        'nothing was changed: delete the directory and restore again',
    );
  }
  const newest = newestSnapshot(files, files.length);
  try {
    return await recoverFiles(dir, files, newest, temps, undefined, logger, options);
  } catch (err) {
    if (!(err instanceof DamagedCheckpointError)) throw err;
    // The files the checkpoint replaced may still be there (a crash before
    // compaction deleted them): then they hold the same state, replayed the
    // long way. They count only if they are complete: each log must start at
    // the revision where the file before it ended (recoverFiles checks it).
    const damaged = files[newest];
    const damagedPath = dataFilePath(dir, damaged.name);
    // Its header (CRC'd on its own) says how far the state it held went; without it, nothing says what a fallback must reach.
    const header = decodeFileHeader(readHead(damagedPath));
    if (typeof header === 'string') throw err.damage;
    const rest = files.filter((f) => f !== damaged);
    const older = newestSnapshot(rest, newest);
    const firstFile = rest[older] as DataFile | undefined;
    if (firstFile === undefined) throw err.damage;
    let recovered: RecoveredState;
    try {
      recovered = await recoverFiles(dir, rest, older, temps, { atLeast: header.baseRevision }, logger, options);
    } catch (fallbackErr) {
      // The older files are incomplete (the usual case: compaction deleted some) or damaged too: the checkpoint's
      // damage is the one to report, and damage in the older files is said with it, so that whoever moves the
      // checkpoint aside is not surprised by a second refusal.
      if (fallbackErr instanceof IncompleteChainError) throw err.damage;
      if (fallbackErr instanceof CorruptDataError) {
        const { file, offset, reason } = err.damage;
        throw new CorruptDataError(file, offset, `${reason}; replaying the files before it instead failed too: ${fallbackErr.message}`);
      }
      throw fallbackErr;
    }
    // Kept beside the others for a person to look at, under a name nothing reads.
    fs.renameSync(damagedPath, `${damagedPath}.damaged`);
    syncDirectory(dir);
    logger.error(
      { err: err.damage, file: damagedPath, movedTo: `${damagedPath}.damaged`, replayedFrom: firstFile.name },
      `checkpoint ${damagedPath} is damaged; recovered from the files it replaced instead (it was moved to ${damaged.name}.damaged)`,
    );
    return recovered;
  }
}

/** The first FILE_HEADER_SIZE bytes of a file (fewer if it is shorter). */
function readHead(filePath: string): Buffer {
  const fd = fs.openSync(filePath, 'r');
  try {
    const buf = Buffer.alloc(FILE_HEADER_SIZE);
    return buf.subarray(0, fs.readSync(fd, buf, 0, FILE_HEADER_SIZE, 0));
  } finally {
    fs.closeSync(fd);
  }
}

/** The position of the newest snapshot among files[0, before), or 0 if there is none (replay from the first log). */
function newestSnapshot(files: readonly DataFile[], before: number): number {
  for (let i = Math.min(before, files.length) - 1; i >= 0; i--) if (files[i].kind === FileKind.Snapshot) return i;
  return 0;
}

/** The newest snapshot, a checkpoint, did not load: the damage, for recoverDataDir to rethrow if it cannot fall back. */
class DamagedCheckpointError extends Error {
  constructor(readonly damage: CorruptDataError) {
    super(damage.message);
  }
}

/** Why a log that does not start at the revision the files before it reached cannot be replayed. */
function chainBreak(base: number, reached: number): string {
  const before = reached === 0 ? 'no file before it holds any revision' : `the files before it end at revision ${reached}`;
  const what =
    base > reached
      ? 'a checkpoint or log is missing, or a sealed log was cut short: the revisions between are not in this directory'
      : 'it overlaps the files before it: a log from elsewhere, or a checkpoint newer than it';
  return `its header says it starts at revision ${base}, but ${before}; ${what}. Nothing was changed; restore the missing file or a backup`;
}

/** In a fallback replay: a log that does not start where the file before it ended (files are missing). */
class IncompleteChainError extends Error {}

async function recoverFiles(
  dir: string,
  files: readonly DataFile[],
  first: number,
  temps: readonly string[],
  /** A fallback replay: no file may be missing, and the state must reach this revision. */
  chain: { atLeast: number } | undefined,
  logger: Logger,
  options: RecoverOptions,
): Promise<RecoveredState> {
  const replay: Replay = {
    index: StoreIndex.forReplay(),
    window: undefined,
    options,
    sinceCheck: 0,
    yieldedAt: performance.now(),
    checkChain: chain !== undefined,
    keyRecordsLeft: 0,
  };
  let revision = 0;
  const kept: RecoveredState['files'] = [];
  const obsolete = [...temps, ...files.slice(0, first).map((f) => f.name)];
  // Newest logs no longer than a header hold no record: a log whose creation
  // did not finish (a crash, or a failed rotation whose clean-up failed too),
  // or one started just before a crash. Dropping them loses nothing, and the
  // log before them is then the newest, the one whose tail may be torn.
  let end = files.length;
  const emptyLogBases: number[] = [];
  const emptyLogs: { base: number; file: string }[] = [];
  while (end > first && files[end - 1].kind === FileKind.Log) {
    const file = files[end - 1];
    const filePath = dataFilePath(dir, file.name);
    if (fs.statSync(filePath).size > FILE_HEADER_SIZE) break;
    const headerBytes = fs.readFileSync(filePath);
    const header = decodeFileHeader(headerBytes);
    // A file of another format version is not ours to delete.
    if (typeof header === 'string' && isOtherFormatVersion(headerBytes)) throw new CorruptDataError(filePath, 0, header);
    if (typeof header === 'string') {
      logger.warn({ file: filePath, reason: header }, `removing ${filePath}: a log cut short while being created`);
    } else {
      emptyLogBases.push(header.baseRevision);
      emptyLogs.push({ base: header.baseRevision, file: file.name });
      if (header.baseRevision > revision) revision = header.baseRevision;
    }
    obsolete.push(file.name);
    end--;
  }
  const replayed = files.slice(first, end);
  // A snapshot first, if any (only a log can have a torn tail: a snapshot is complete before it gets its name).
  let logsFrom = 0;
  if (replayed.length > 0 && replayed[0].kind === FileKind.Snapshot) {
    try {
      const { size, checkpoint } = await replaySnapshotFile(dir, replayed[0], replay);
      kept.push({ ...replayed[0], size, checkpoint });
    } catch (err) {
      if (chain === undefined && err instanceof CorruptDataError) throw new DamagedCheckpointError(err);
      throw err;
    }
    logsFrom = 1;
  }
  // Then the logs: each checked whole first, so that replay knows how many
  // changes follow each batch (and which of them the history window would only evict).
  const logs: CheckedLog[] = [];
  for (let i = logsFrom; i < replayed.length; i++) logs.push(await checkLog(dir, replayed[i], i === replayed.length - 1, replay));
  replay.keyRecordsLeft = logs.reduce((sum, log) => sum + log.keyRecords, 0);
  for (const log of logs) kept.push({ ...log.file, size: await applyLog(dir, log, replay, logger) });
  const index = replay.index;
  const reached = index.revision;
  if (chain !== undefined && (replayed.length === 0 || reached < chain.atLeast || emptyLogBases.some((base) => base !== reached))) {
    throw new IncompleteChainError(`the files replayed reach revision ${reached}, not ${chain.atLeast}`);
  }
  // An empty newest log starts where the files before it end, too (it is dropped: the log before it takes writes again).
  if (chain === undefined && emptyLogs.some(({ base }) => base !== reached)) {
    const { base, file } = emptyLogs.find(({ base }) => base !== reached) as { base: number; file: string };
    throw new CorruptDataError(dataFilePath(dir, file), 0, chainBreak(base, reached));
  }
  index.finishReplay();
  if (revision > index.revision) index.revision = revision;
  // No log replayed: the history starts after the state loaded.
  const window = replay.window ?? newWindow(options, index.revision);
  return { index, window, revision: index.revision, files: kept, obsolete };
}

/** Replay's working state: the index being rebuilt, and the window once the first log starts. */
interface Replay {
  index: StoreIndex;
  window: HistoryWindow | undefined;
  options: RecoverOptions;
  /** Bytes replayed since the clock was last read. */
  sinceCheck: number;
  /** When replay last yielded to the event loop (performance.now()). */
  yieldedAt: number;
  /** Every log must start at the revision the files before it reached (a fallback replay: no file may be missing). */
  checkChain: boolean;
  /** Records still to apply that are each one change for the history window (isKeyRecord). */
  keyRecordsLeft: number;
}

/** A history window (HistoryWindow's constructor), packing as the options say. */
function newWindow(options: RecoverOptions, revision: number, packed?: readonly PackedChanges[]): HistoryWindow {
  const window = new HistoryWindow(options.history, revision, packed);
  if (options.pack !== undefined) window.packWith(options.pack, options.recycle);
  return window;
}

async function yieldNow(replay: Replay, bytes: number): Promise<void> {
  replay.sinceCheck += bytes;
  if (replay.sinceCheck < CLOCK_CHECK_BYTES) return;
  replay.sinceCheck = 0;
  if (performance.now() - replay.yieldedAt < YIELD_EVERY_MS) return;
  await new Promise((resolve) => setImmediate(resolve));
  replay.yieldedAt = performance.now();
  replay.options.signal?.throwIfAborted();
}

/** Loads the snapshot a replay starts at: a checkpoint, or a snapshot of format 3 or 4 record by record. */
async function replaySnapshotFile(
  dir: string,
  file: DataFile,
  replay: Replay,
): Promise<{ size: number; checkpoint?: { historyBytes: number } }> {
  const filePath = dataFilePath(dir, file.name);
  const fd = fs.openSync(filePath, 'r');
  try {
    const fileSize = fs.fstatSync(fd).size;
    const header = readFileHeader(fd, filePath, file);
    if (header.baseRevision > replay.index.revision) replay.index.revision = header.baseRevision;
    if (header.version >= CHECKPOINT_VERSION) {
      const loaded = await readCheckpoint(fd, filePath, fileSize, header, (bytes) => yieldNow(replay, bytes));
      for (const lease of loaded.leases) replay.index.apply({ type: 'lease-grant', ...lease, revision: header.baseRevision });
      replay.index.setBase(loaded.table, header.baseRevision);
      replay.window = newWindow(replay.options, loaded.historyFrom, loaded.history);
      return { size: fileSize, checkpoint: { historyBytes: loaded.historyBytes } };
    }
    await replaySnapshot(new FileWindow(fd, fileSize), filePath, header.version, replay);
    return { size: fileSize };
  } finally {
    fs.closeSync(fd);
  }
}

/** The header of a data file, checked against the file's name. */
function readFileHeader(fd: number, filePath: string, file: DataFile): FileHeader {
  const headerBuf = Buffer.alloc(FILE_HEADER_SIZE);
  const headerRead = fs.readSync(fd, headerBuf, 0, FILE_HEADER_SIZE, 0);
  const header = decodeFileHeader(headerBuf.subarray(0, headerRead));
  if (typeof header === 'string') throw new CorruptDataError(filePath, 0, header);
  if (header.kind !== file.kind) throw new CorruptDataError(filePath, 0, 'file header kind does not match its name');
  return header;
}

/** A snapshot is the live leases, then the live keys (SET, SET_LEASED), to the end of the file; any damage refuses to open. */
async function replaySnapshot(window: FileWindow, filePath: string, version: number, replay: Replay): Promise<void> {
  const record = emptyRecord();
  let offset = FILE_HEADER_SIZE;
  while (offset < window.fileSize) {
    let i = window.at(offset, FRAME_SIZE);
    if (i < 0) throw new CorruptDataError(filePath, offset, 'record frame cut short');
    const size = FRAME_SIZE + window.buf.readUInt32LE(i + 4);
    i = window.at(offset, size);
    if (i < 0) throw new CorruptDataError(filePath, offset, `record of ${size} bytes runs past the end of the file`);
    const problem = readRecord(window.buf, i, i + size, record)?.reason ?? typeNewerThanFile(record.type, version);
    if (problem !== undefined) throw new CorruptDataError(filePath, offset, problem);
    if (record.type === RecordType.LeaseGrant) {
      replay.index.apply({ type: 'lease-grant', id: record.lease, ttlMs: record.ttlMs, revision: record.revision });
    } else if (record.type === RecordType.Set || record.type === RecordType.SetLeased) {
      replay.index.load(record.key, {
        valueJson: record.valueJson,
        createRevision: record.createRevision,
        modRevision: record.revision,
        version: record.version,
        lease: record.lease,
      });
    } else {
      throw new CorruptDataError(filePath, offset, 'a snapshot holds only lease grants and keys');
    }
    offset += size;
    await yieldNow(replay, size);
  }
}

/** A log checked whole (checkLog), ready to apply. */
interface CheckedLog {
  file: DataFile;
  header: FileHeader;
  /** Where its last complete batch ends. */
  end: number;
  /** A torn final batch, cut off (at `end`) once the batches before it are applied. */
  torn: { at: number; reason: string } | undefined;
  /** Only zeros follow `end` (written ahead, never written over): cut off like a torn batch, without a warning. */
  zeroTail: boolean;
  /** SET, SET_LEASED and CLEAR records up to `end`: each is one change for the history window. */
  keyRecords: number;
}

/**
 * Pass 1 over a log: checks every batch (frame, CRC, nonce, every field)
 * and counts the records that are changes. Changes nothing, on disk or in
 * memory. Damage in a log other than the newest, or damage that a later
 * batch proves was durable, refuses to open; in the newest log, damage that
 * no later batch vouches for is a torn tail, which ends the log.
 */
async function checkLog(dir: string, file: DataFile, newestLog: boolean, replay: Replay): Promise<CheckedLog> {
  const filePath = dataFilePath(dir, file.name);
  const fd = fs.openSync(filePath, 'r');
  try {
    const header = readFileHeader(fd, filePath, file);
    const window = new FileWindow(fd, fs.fstatSync(fd).size);
    const fileSize = window.fileSize;
    const nonce = header.nonce;
    const record = emptyRecord();
    let keyRecords = 0;
    const damaged = (batchStart: number, at: number, reason: string): CheckedLog => {
      if (!newestLog) throw new CorruptDataError(filePath, at, reason);
      if (onlyZerosFrom(fd, batchStart, fileSize)) return { file, header, end: batchStart, torn: undefined, zeroTail: true, keyRecords };
      const later = findBatchVouchingFor(window, at, nonce, record);
      if (later !== undefined) {
        throw new CorruptDataError(
          filePath,
          at,
          `${reason}; the batch at byte offset ${later} was written after this byte was durable, so this is not a torn tail`,
        );
      }
      return { file, header, end: batchStart, torn: { at, reason }, zeroTail: false, keyRecords };
    };
    let offset = FILE_HEADER_SIZE;
    while (offset < fileSize) {
      const batchStart = offset;
      let i = window.at(batchStart, BATCH_RECORD_SIZE);
      if (i < 0) return damaged(batchStart, batchStart, 'BATCH record cut short');
      let problem = checkRecord(window.buf, i, i + BATCH_RECORD_SIZE, record, true);
      if (problem === undefined && record.type !== RecordType.Batch) {
        problem = { short: false, reason: `record type ${record.type} where a BATCH record should start` };
      }
      if (problem !== undefined) return damaged(batchStart, batchStart, problem.reason);
      if (!batchNonceIs(window.buf, i, nonce)) {
        return damaged(batchStart, batchStart, "BATCH record's nonce is not this log's (not written to this file as a BATCH record)");
      }
      if (record.syncedThrough > batchStart) {
        return damaged(batchStart, batchStart, 'BATCH synced-through offset lies past the batch itself');
      }
      const batchRevision = record.revision;
      const batchBytes = record.batchBytes;
      const first = batchStart + BATCH_RECORD_SIZE;
      const available = Math.min(batchBytes, fileSize - first);
      i = window.at(first, available);
      const end = i + available;
      let lastRevision = 0;
      let changes = 0;
      for (let p = i; p < end; p += record.size) {
        problem = checkRecord(window.buf, p, end, record, true);
        if (problem === undefined && record.type === RecordType.Batch) {
          problem = { short: false, reason: 'BATCH record inside a batch' };
        }
        if (problem !== undefined) return damaged(batchStart, first + (p - i), problem.reason);
        // A whole record (its CRC holds) that its file's version cannot hold is no torn write: never cut off as one.
        const tooNew = typeNewerThanFile(record.type, header.version);
        if (tooNew !== undefined) throw new CorruptDataError(filePath, first + (p - i), tooNew);
        lastRevision = record.revision;
        if (isKeyRecord(record.type)) changes++;
      }
      if (available < batchBytes) return damaged(batchStart, fileSize, `batch of ${batchBytes} bytes cut short by the end of the file`);
      if (lastRevision !== batchRevision) {
        return damaged(batchStart, batchStart, `batch ends at revision ${lastRevision}, its BATCH record says ${batchRevision}`);
      }
      keyRecords += changes;
      offset = first + batchBytes;
      await yieldNow(replay, BATCH_RECORD_SIZE + batchBytes);
    }
    return { file, header, end: fileSize, torn: undefined, zeroTail: false, keyRecords };
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Records that always stand for one change in the history window. A DELETE
 * is left out: replay skips one of a key that is not there, so counting it
 * could overcount (the count must never be more than the changes to come).
 */
function isKeyRecord(type: number): boolean {
  return type === RecordType.Set || type === RecordType.SetLeased || type === RecordType.Clear;
}

/**
 * Pass 2 over a checked log: applies its batches in order, exactly as the
 * commit loop did, then cuts off a torn tail; returns the size kept.
 *
 * The history window keeps the newest changes, so a change followed by at
 * least maxChanges other changes in later revisions would be evicted by the
 * end of replay whatever it holds. Batches of such changes skip the window
 * (a batch holds whole revisions, so every change after it is in a later
 * revision); the window then starts after the last of them, as eviction
 * would have left it. Their previous entries are never needed, so a key
 * overwritten there is not decoded from the checkpoint's table.
 */
async function applyLog(dir: string, log: CheckedLog, replay: Replay, logger: Logger): Promise<number> {
  const filePath = dataFilePath(dir, log.file.name);
  const cutsTail = log.torn !== undefined || log.zeroTail;
  const fd = fs.openSync(filePath, cutsTail ? 'r+' : 'r');
  try {
    const index = replay.index;
    const header = log.header;
    // Each log starts where the file before it ended (a log is sealed, synced, before the next one is made): a
    // gap is a missing checkpoint or log, or a sealed log cut short, and replaying past it would serve a state
    // with acknowledged writes missing as if it were whole.
    if (header.baseRevision !== index.revision) {
      if (replay.checkChain) throw new IncompleteChainError(`${filePath} starts at revision ${header.baseRevision}, not ${index.revision}`);
      throw new CorruptDataError(filePath, 0, chainBreak(header.baseRevision, index.revision));
    }
    // The history a watcher can resume from starts with the first log after the state loaded.
    replay.window ??= newWindow(replay.options, index.revision);
    // A window of no changes still keeps the newest revision.
    const maxChanges = Math.max(1, replay.options.history.maxChanges);
    const window = new FileWindow(fd, log.end);
    const record = emptyRecord();
    const changes: KeyChange[] = [];
    let offset = FILE_HEADER_SIZE;
    while (offset < log.end) {
      let i = window.at(offset, BATCH_RECORD_SIZE);
      const batchBytes = window.buf.readUInt32LE(i + 17);
      const batchRevision = readU64(window.buf, i + 9);
      const first = offset + BATCH_RECORD_SIZE;
      i = window.at(first, batchBytes);
      const end = i + batchBytes;
      let inBatch = 0;
      for (let p = i; p < end; p += FRAME_SIZE + window.buf.readUInt32LE(p + 4)) if (isKeyRecord(window.buf[p + 8])) inBatch++;
      replay.keyRecordsLeft -= inBatch;
      const keep = replay.keyRecordsLeft < maxChanges;
      for (let p = i; p < end; p += record.size) {
        decodeCheckedRecord(window.buf, p, record);
        if (record.type === RecordType.Set || record.type === RecordType.SetLeased) {
          const entry: StoredEntry = {
            valueJson: record.valueJson,
            createRevision: record.createRevision,
            modRevision: record.revision,
            version: record.version,
            lease: record.lease,
          };
          const prev = index.replaySet(record.key, entry, record.size, keep);
          if (keep) changes.push({ type: 'set', key: record.key, revision: record.revision, entry, prev });
          continue;
        }
        const change = decodeChange(record, index);
        if (change === undefined) continue;
        index.apply(change);
        if (keep && isKeyChange(change)) changes.push(change);
      }
      if (!keep) {
        replay.window = newWindow(replay.options, batchRevision);
      } else if (changes.length > 0) {
        replay.window.push(changes);
        changes.length = 0;
      }
      offset = first + batchBytes;
      await yieldNow(replay, BATCH_RECORD_SIZE + batchBytes);
    }
    if (!cutsTail) return log.end;
    const fileSize = fs.fstatSync(fd).size;
    if (log.torn === undefined) {
      logger.info(
        { file: filePath, offset: log.end, droppedBytes: fileSize - log.end },
        `cutting the zeros written ahead off ${filePath} at byte offset ${log.end}`,
      );
    } else {
      logger.warn(
        { file: filePath, offset: log.end, damageOffset: log.torn.at, droppedBytes: fileSize - log.end, reason: log.torn.reason },
        `truncating a torn final batch in ${filePath} at byte offset ${log.end} (damage at byte offset ${log.torn.at}: ${log.torn.reason})`,
      );
    }
    fs.ftruncateSync(fd, log.end);
    fs.fdatasyncSync(fd);
    return log.end;
  } finally {
    fs.closeSync(fd);
  }
}

/** Whether the file holds only zero bytes from `from` to `fileSize`. */
function onlyZerosFrom(fd: number, from: number, fileSize: number): boolean {
  const buf = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, Math.max(1, fileSize - from)));
  for (let offset = from; offset < fileSize;) {
    const n = fs.readSync(fd, buf, 0, Math.min(buf.length, fileSize - offset), offset);
    if (n === 0) return false;
    for (let i = 0; i < n; i++) if (buf[i] !== 0) return false;
    offset += n;
  }
  return true;
}

/**
 * Looks past damage at `at` for a readable BATCH record with this log's
 * nonce whose synced-through offset lies beyond `at`: proof that the damaged
 * byte had been durable. Searched byte by byte (the records between may be
 * damaged too); returns its offset, or undefined. Garbage passes the CRC with
 * odds of 1 in 2^32; a BATCH record a client embedded in a key or value
 * passes the CRC but not the nonce check (the client never sees the nonce).
 */
function findBatchVouchingFor(window: FileWindow, at: number, nonce: Buffer, record: DecodedRecord): number | undefined {
  const fileSize = window.fileSize;
  let start = at + 1;
  while (start + BATCH_RECORD_SIZE <= fileSize) {
    const length = Math.min(CHUNK_BYTES, fileSize - start);
    const i = window.at(start, length);
    const buf = window.buf;
    const last = i + length - BATCH_RECORD_SIZE;
    for (let p = i; p <= last; p++) {
      // Cheap filters first: the type byte and the fixed body length.
      if (buf[p + 8] !== RecordType.Batch || buf[p + 4] !== BATCH_RECORD_SIZE - FRAME_SIZE) continue;
      if ((buf[p + 5] | buf[p + 6] | buf[p + 7]) !== 0) continue;
      if (
        checkRecord(buf, p, p + BATCH_RECORD_SIZE, record, true) === undefined &&
        record.syncedThrough > at &&
        batchNonceIs(buf, p, nonce)
      ) {
        return start + (p - i);
      }
    }
    start += length - BATCH_RECORD_SIZE + 1;
  }
  return undefined;
}

/** Buffered reads of one file: at() makes a range of it available in `buf`. */
class FileWindow {
  buf: Buffer;
  /** File offset of buf[0], and how many bytes from there are buffered. */
  private start = 0;
  private length = 0;

  constructor(
    readonly fd: number,
    readonly fileSize: number,
  ) {
    this.buf = Buffer.allocUnsafe(Math.max(1, Math.min(CHUNK_BYTES, fileSize)));
  }

  /**
   * The index in `buf` of file offset `offset`, with at least `n` bytes from
   * it buffered; -1 if the file ends first. Reads ahead a chunk at a time.
   */
  at(offset: number, n: number): number {
    if (offset + n > this.fileSize) return -1;
    if (offset >= this.start && offset + n <= this.start + this.length) return offset - this.start;
    let kept = 0;
    const bufferedEnd = this.start + this.length;
    const target = n > this.buf.length ? Buffer.allocUnsafe(n) : this.buf;
    if (offset >= this.start && offset < bufferedEnd) {
      kept = bufferedEnd - offset;
      this.buf.copy(target, 0, offset - this.start, this.length);
    }
    this.buf = target;
    this.start = offset;
    const want = Math.min(this.buf.length, this.fileSize - offset);
    this.length = kept + readFully(this.fd, this.buf, kept, want - kept, offset + kept);
    return this.length >= n ? 0 : -1;
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

/**
 * The embedded file engine. Public methods check state and input and encode
 * (the abstract-level split); the writer loop (group-commit.ts) and the index
 * do the work. States: open → closing (no new calls; queued writes still
 * commit) → closed.
 */
import fs from 'node:fs';
import { type Logger, silentLogger } from '../../logger';
import { StoreClosedError } from '../errors';
import type {
  ClearResult,
  DeleteResult,
  Entry,
  JsonValue,
  KeyValueStore,
  ListOptions,
  ListResult,
  SetResult,
  WriteOptions,
} from '../key-value-store';
import { encodeValue, validateKey, validatePrefix } from '../validate-input';
import { type CompactionOptions, Compactor } from './compact';
import { dataFilePath, syncDirectory } from './data-dir-files';
import { type DataDirLock, lockDataDir } from './data-dir-lock';
import { GroupCommit, type WriteOp } from './group-commit';
import { type ActiveLog, type FsyncMode, LogWriter, createLogFile, openLogFile } from './log-writer';
import { FileKind } from './record-codec';
import { recoverDataDir } from './recover-log';
import { StoreIndex } from './store-index';

export interface FileStoreOptions {
  dataDir: string;
  /** When a write is acknowledged; see docs/storage-format.md for each mode's loss window. Default 'always'. */
  fsync?: FsyncMode;
  /** For fsync 'interval': the longest time between fdatasyncs. Default 1000. */
  fsyncIntervalMs?: number;
  /** Default 4096 (UTF-8 bytes). */
  maxKeyBytes?: number;
  /** Default 1048576 (JSON-encoded bytes). */
  maxValueBytes?: number;
  logger?: Logger;
  compaction?: CompactionOptions;
}

type State = 'open' | 'closing' | 'closed';

export class FileStore implements KeyValueStore {
  private state: State = 'open';
  private closing: Promise<void> | undefined;

  /** Use openFileStore(). */
  constructor(
    readonly dataDir: string,
    private readonly index: StoreIndex,
    private readonly writer: LogWriter,
    private readonly compactor: Compactor,
    private readonly commits: GroupCommit,
    private readonly lock: DataDirLock,
    private readonly maxKeyBytes: number,
    private readonly maxValueBytes: number,
    private readonly logger: Logger,
  ) {}

  get revision(): number {
    return this.index.revision;
  }

  /**
   * Bytes of all data files and of the live records in them (for monitoring
   * and benchmarks); `compacting` is true while a compaction runs or is due.
   */
  get diskUsage(): { diskBytes: number; liveBytes: number; compacting: boolean } {
    return {
      diskBytes: this.compactor.diskBytes,
      liveBytes: this.index.liveBytes,
      compacting: this.compactor.isRunning || this.compactor.isDue(),
    };
  }

  async get(key: string): Promise<Entry | undefined> {
    this.checkOpen();
    validateKey(key, this.maxKeyBytes);
    const e = this.index.get(key);
    if (e === undefined) return undefined;
    return {
      key,
      value: JSON.parse(e.valueJson) as JsonValue,
      createRevision: e.createRevision,
      modRevision: e.modRevision,
      version: e.version,
    };
  }

  set(key: string, value: JsonValue, options?: WriteOptions): Promise<SetResult> {
    return new Promise<SetResult>((resolve, reject) => {
      this.checkOpen();
      const keyBytes = validateKey(key, this.maxKeyBytes);
      const { json, size } = encodeValue(key, value, this.maxValueBytes);
      this.commits.submit({
        kind: 'set',
        key,
        keyBytes,
        valueJson: json,
        valueBytes: size,
        expected: expectedRevision(options),
        resolve,
        reject,
      });
    });
  }

  delete(key: string, options?: WriteOptions): Promise<DeleteResult> {
    return new Promise<DeleteResult>((resolve, reject) => {
      this.checkOpen();
      const keyBytes = validateKey(key, this.maxKeyBytes);
      this.commits.submit({ kind: 'delete', key, keyBytes, expected: expectedRevision(options), resolve, reject });
    });
  }

  async listKeys(options: ListOptions = {}): Promise<ListResult> {
    this.checkOpen();
    const prefix = validatePrefix(options.prefix);
    const startAfter = options.startAfter === undefined ? undefined : validatePrefix(options.startAfter, 'startAfter');
    const limit = options.limit === undefined ? Number.POSITIVE_INFINITY : Math.max(0, Math.floor(options.limit));
    return this.index.list(prefix, startAfter, limit);
  }

  clear(options: { prefix?: string } = {}): Promise<ClearResult> {
    return new Promise<ClearResult>((resolve, reject) => {
      this.checkOpen();
      const prefix = validatePrefix(options.prefix);
      const op: WriteOp = { kind: 'clear', prefix, prefixBytes: Buffer.byteLength(prefix, 'utf8'), resolve, reject };
      this.commits.submit(op);
    });
  }

  close(): Promise<void> {
    if (this.closing === undefined) {
      this.state = 'closing';
      this.closing = this.shutDown();
    }
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    try {
      await this.commits.drain();
      await this.compactor.stop();
      await this.writer.close();
    } finally {
      await this.lock.release();
      this.state = 'closed';
      this.logger.debug({ dataDir: this.dataDir }, 'store closed');
    }
  }

  private checkOpen(): void {
    if (this.state !== 'open') throw new StoreClosedError(`the store is ${this.state}`);
  }
}

function expectedRevision(options: WriteOptions | undefined): number | undefined {
  const expected = options?.expectedRevision;
  if (expected === undefined || expected === null) return undefined;
  return expected;
}

/** Locks the data directory, recovers its state and opens it for writing. */
export async function openFileStore(options: FileStoreOptions): Promise<FileStore> {
  const dir = options.dataDir;
  const logger = options.logger ?? silentLogger;
  fs.mkdirSync(dir, { recursive: true });
  const lock = await lockDataDir(dir, logger);
  try {
    const started = performance.now();
    const recovered = recoverDataDir(dir, logger);
    const last = recovered.files.at(-1);
    let active: ActiveLog;
    const sealed = recovered.files.map((f) => ({ seq: f.seq, name: f.name, size: f.size }));
    if (last !== undefined && last.kind === FileKind.Log) {
      active = openLogFile(dir, last.seq, last.size);
      sealed.pop();
    } else {
      active = createLogFile(dir, (last?.seq ?? 0) + 1, recovered.revision);
    }
    if (recovered.obsolete.length > 0) {
      for (const name of recovered.obsolete) fs.rmSync(dataFilePath(dir, name), { force: true });
      syncDirectory(dir);
    }
    const index = StoreIndex.fromEntries(recovered.entries, recovered.revision);
    const mode = options.fsync ?? 'always';
    const writer = new LogWriter(dir, active, mode, options.fsyncIntervalMs ?? 1000, logger);
    const compactor = new Compactor(dir, sealed, writer, index, options.compaction ?? {}, logger);
    const commits = new GroupCommit(index, writer, compactor);
    logger.info(
      {
        dataDir: dir,
        keys: index.size,
        revision: index.revision,
        files: recovered.files.length,
        ms: Math.round(performance.now() - started),
      },
      'store opened',
    );
    return new FileStore(
      dir,
      index,
      writer,
      compactor,
      commits,
      lock,
      options.maxKeyBytes ?? 4096,
      options.maxValueBytes ?? 1048576,
      logger,
    );
  } catch (err) {
    await lock.release();
    throw err;
  }
}

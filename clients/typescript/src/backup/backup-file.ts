/**
 * The backup file: what `kvctl backup` writes and `kvctl restore` reads.
 *
 *   bytes 0-7   "KVBACKUP" (ASCII)
 *   then frames, one per message of the Backup stream, in order:
 *     4 bytes   the message's length, unsigned little-endian
 *     n bytes   the kv.v1.BackupResponse message, exactly as the server sent it
 *
 * The first message is the header, then the leases, then the entries in
 * code point order of their keys, and the last the trailer, whose sha256 is
 * the SHA-256 of every frame before it (their length fields included): the
 * bytes of the file from offset 8 up to the trailer's frame. Nothing follows
 * the trailer. A file is trusted only once it was read to the end and the
 * checksum matched; until then nothing read from it may be used.
 */
import { createHash, type Hash } from 'node:crypto';
import fs from 'node:fs';
import { status } from '@grpc/grpc-js';
import { BackupResponse, type BackupEntry, type BackupHeader, type BackupLease } from '../gen/kv/v1/kv';
import { assertJsonValue } from '../json-value-check';
import { KvError } from '../kv-error';

export const BACKUP_FILE_MAGIC = Buffer.from('KVBACKUP', 'latin1');
/** The stream layouts this SDK reads (BackupHeader.format_version). */
export const BACKUP_FORMAT_VERSION = 1;
/** A frame longer than this is damage, not a message (the server sends about 1 MiB per message). */
const MAX_FRAME_BYTES = 256 * 1024 * 1024;
const READ_CHUNK_BYTES = 4 * 1024 * 1024;

/** What a complete, checked backup holds. */
export interface BackupSummary {
  /** The store revision the snapshot is at. */
  revision: number;
  keyCount: number;
  leaseCount: number;
  /** When the server took it (ms since the Unix epoch). */
  createdAtMs: number;
  /** The file's size. */
  bytes: number;
  /** The trailer's checksum, hex. */
  sha256: string;
}

/** How far a backup or restore has got. */
export interface BackupProgress {
  keys: number;
  /** From the header; undefined before it arrived. */
  keyCount: number | undefined;
  bytes: number;
}

export type { BackupEntry, BackupHeader, BackupLease };

/** A backup file that is not one, is cut short or is damaged: KvError DATA_LOSS, reason CORRUPT. */
export function damagedBackup(message: string): KvError {
  return new KvError(message, status.DATA_LOSS, 'CORRUPT');
}

/**
 * Checks the parts of a backup as they come, in order, whether from a
 * server's stream or from a file: their sequence, counts, key order and
 * revisions, each value (JSON a client can read: a restored store serves
 * it as it is), each private lease held by one key, and the running
 * checksum. `where` names the place of a part in errors ("at byte offset
 * 1234 of backup.kvb").
 */
export class BackupChecker {
  header: BackupHeader | undefined;
  leaseIds = new Set<number>();
  keys = 0;
  /** Each private lease, and the key that holds it once one does. */
  private readonly privateLeases = new Map<number, string | undefined>();
  private lastKey: string | undefined;
  private trailerSeen = false;
  private digest = '';
  private readonly hash: Hash = createHash('sha256');
  private readonly length = Buffer.alloc(4);

  constructor(private readonly name: string) {}

  /** Takes the next message's bytes; returns it decoded. */
  take(bytes: Buffer, where: string): BackupResponse {
    if (this.trailerSeen) throw damagedBackup(`${this.name} is damaged: data after its trailer ${where}`);
    let message: BackupResponse;
    try {
      message = BackupResponse.decode(bytes);
    } catch (error) {
      throw damagedBackup(`${this.name} is damaged ${where}: ${(error as Error).message}`);
    }
    if (message.trailer !== undefined) {
      this.finishWith(message.trailer.sha256, where);
      return message;
    }
    this.length.writeUInt32LE(bytes.length);
    this.hash.update(this.length).update(bytes);
    if (message.header !== undefined) this.takeHeader(message.header, where);
    else if (this.header === undefined) throw damagedBackup(`${this.name} is damaged ${where}: it does not start with a header`);
    else if (message.leases !== undefined) this.takeLeases(message.leases.leases, where);
    else if (message.entries !== undefined) this.takeEntries(message.entries.entries, where);
    else throw damagedBackup(`${this.name} is damaged ${where}: a message of no known kind`);
    return message;
  }

  /** Throws unless the trailer was seen (a backup cut short). */
  finished(where: string): void {
    if (!this.trailerSeen) throw damagedBackup(`${this.name} is incomplete: it ends ${where} without its trailer (a backup cut short?)`);
  }

  /** The checksum, hex, once the trailer matched it. */
  get checksum(): string {
    return this.digest;
  }

  private takeHeader(header: BackupHeader, where: string): void {
    if (this.header !== undefined) throw damagedBackup(`${this.name} is damaged ${where}: a second header`);
    if (header.formatVersion !== BACKUP_FORMAT_VERSION) {
      throw damagedBackup(
        `${this.name} is a backup of format version ${header.formatVersion}; this kvctl reads version ${BACKUP_FORMAT_VERSION}`,
      );
    }
    if (header.revision < 0 || header.keyCount < 0 || header.leaseCount < 0) {
      throw damagedBackup(`${this.name} is damaged ${where}: negative numbers in its header`);
    }
    this.header = header;
  }

  private takeLeases(leases: BackupLease[], where: string): void {
    if (this.keys > 0) throw damagedBackup(`${this.name} is damaged ${where}: leases after entries`);
    for (const lease of leases) {
      if (lease.id < 1 || lease.ttlMs < 1 || this.leaseIds.has(lease.id)) {
        throw damagedBackup(`${this.name} is damaged ${where}: lease ${lease.id} is invalid or repeated`);
      }
      this.leaseIds.add(lease.id);
      if (lease.private) this.privateLeases.set(lease.id, undefined);
    }
    if (this.leaseIds.size > (this.header as BackupHeader).leaseCount) {
      throw damagedBackup(`${this.name} is damaged ${where}: more leases than its header says`);
    }
  }

  private takeEntries(entries: BackupEntry[], where: string): void {
    const header = this.header as BackupHeader;
    if (this.keys === 0 && this.leaseIds.size !== header.leaseCount) {
      throw damagedBackup(`${this.name} is damaged ${where}: ${this.leaseIds.size} leases, its header says ${header.leaseCount}`);
    }
    for (const entry of entries) {
      const { key, createRevision, modRevision, version, lease } = entry;
      if (key === '' || (this.lastKey !== undefined && compareCodePoints(this.lastKey, key) >= 0)) {
        throw damagedBackup(`${this.name} is damaged ${where}: key ${JSON.stringify(key)} is empty or out of order`);
      }
      if (!(createRevision >= 1 && createRevision <= modRevision && modRevision <= header.revision && version >= 1)) {
        throw damagedBackup(`${this.name} is damaged ${where}: key ${JSON.stringify(key)} has impossible revisions`);
      }
      if (lease !== 0 && !this.leaseIds.has(lease)) {
        throw damagedBackup(`${this.name} is damaged ${where}: key ${JSON.stringify(key)} names lease ${lease}, which it does not hold`);
      }
      const holder = this.privateLeases.get(lease);
      if (holder !== undefined) {
        throw damagedBackup(
          `${this.name} is damaged ${where}: keys ${JSON.stringify(holder)} and ${JSON.stringify(key)} both name lease ${lease}, a private lease (one key's own)`,
        );
      }
      if (this.privateLeases.has(lease)) this.privateLeases.set(lease, key);
      const problem = valueProblem(entry.valueJson);
      if (problem !== undefined)
        throw damagedBackup(`${this.name} is damaged ${where}: the value of key ${JSON.stringify(key)} ${problem}`);
      this.lastKey = key;
      this.keys++;
    }
    if (this.keys > header.keyCount) throw damagedBackup(`${this.name} is damaged ${where}: more entries than its header says`);
  }

  private finishWith(sha256: Uint8Array, where: string): void {
    const header = this.header;
    if (header === undefined) throw damagedBackup(`${this.name} is damaged ${where}: a trailer before any header`);
    this.digest = this.hash.digest('hex');
    if (Buffer.from(sha256).toString('hex') !== this.digest) {
      throw damagedBackup(`${this.name} is damaged: its SHA-256 does not match the checksum in its trailer`);
    }
    if (this.keys !== header.keyCount || this.leaseIds.size !== header.leaseCount) {
      throw damagedBackup(
        `${this.name} is damaged: it holds ${this.keys} keys and ${this.leaseIds.size} leases, its header says ${header.keyCount} and ${header.leaseCount}`,
      );
    }
    this.trailerSeen = true;
  }
}

/** Why a backup entry's value text is not one a store may hold and serve; undefined if it is. */
function valueProblem(valueJson: string): string | undefined {
  if (valueJson === '') return 'is empty';
  let value: unknown;
  try {
    value = JSON.parse(valueJson);
  } catch (error) {
    return `is not JSON (${(error as Error).message})`;
  }
  try {
    assertJsonValue(value, 'it');
  } catch (error) {
    return (error as Error).message.replace(/^it /, '');
  }
  return undefined;
}

/**
 * Reads a backup file front to back, synchronously (restore feeds the
 * entries straight into a snapshot writer), checking everything with a
 * BackupChecker. Use: header(), leases(), entries(), then finish(), which
 * checks the trailer: only after finish() returned is what was read trusted.
 */
export class BackupFileReader {
  private readonly fd: number;
  private readonly checker: BackupChecker;
  private buffer = Buffer.alloc(0);
  /** File offset of buffer[0]. */
  private offset = 0;
  private pending: BackupResponse | undefined;
  readonly size: number;

  constructor(
    private readonly file: string,
    private readonly onProgress: (progress: BackupProgress) => void = () => undefined,
  ) {
    try {
      this.fd = fs.openSync(file, 'r');
    } catch (error) {
      throw new KvError(`cannot read ${file}: ${(error as Error).message}`, status.INVALID_ARGUMENT, 'INVALID_ARGUMENT');
    }
    this.size = fs.fstatSync(this.fd).size;
    this.checker = new BackupChecker(file);
    const magic = this.read(BACKUP_FILE_MAGIC.length);
    if (magic === undefined || !magic.equals(BACKUP_FILE_MAGIC)) {
      this.close();
      throw damagedBackup(`${file} is not a kv backup (it does not start with "KVBACKUP")`);
    }
  }

  header(): BackupHeader {
    const message = this.next();
    if (message?.header === undefined) throw damagedBackup(`${this.file} is damaged: it does not start with a header`);
    return message.header;
  }

  /** Every lease (they come before the entries). */
  leases(): BackupLease[] {
    const leases: BackupLease[] = [];
    for (let message = this.peek(); message?.leases !== undefined; message = this.peek()) {
      leases.push(...message.leases.leases);
      this.pending = undefined;
    }
    return leases;
  }

  /** The entries, in key order, as they are read. */
  *entries(): Generator<BackupEntry, void, undefined> {
    for (let message = this.peek(); message?.entries !== undefined; message = this.peek()) {
      this.pending = undefined;
      yield* message.entries.entries;
      this.onProgress({ keys: this.checker.keys, keyCount: this.checker.header?.keyCount, bytes: this.offset });
    }
  }

  /** Reads the trailer and checks the whole file; throws unless it is complete and intact. */
  finish(): BackupSummary {
    const message = this.peek();
    if (message === undefined) this.checker.finished(`at byte ${this.size}`);
    if (message?.trailer === undefined)
      throw damagedBackup(`${this.file} is damaged at byte offset ${this.offset}: a message out of place`);
    this.pending = undefined;
    if (this.read(1) !== undefined) throw damagedBackup(`${this.file} is damaged: data after its trailer`);
    const header = this.checker.header as BackupHeader;
    return {
      revision: header.revision,
      keyCount: header.keyCount,
      leaseCount: header.leaseCount,
      createdAtMs: header.createdAtMs,
      bytes: this.size,
      sha256: this.checker.checksum,
    };
  }

  close(): void {
    fs.closeSync(this.fd);
  }

  private peek(): BackupResponse | undefined {
    this.pending ??= this.next();
    return this.pending;
  }

  /** The next message, checked; undefined at the end of the file. */
  private next(): BackupResponse | undefined {
    const at = this.offset;
    const length = this.read(4);
    if (length === undefined) return undefined;
    const size = length.readUInt32LE(0);
    if (size > MAX_FRAME_BYTES) throw damagedBackup(`${this.file} is damaged at byte offset ${at}: a frame of ${size} bytes`);
    const bytes = this.read(size);
    if (bytes === undefined) this.checker.finished(`in the middle of a message (byte ${this.size})`);
    return this.checker.take(bytes as Buffer, `at byte offset ${at}`);
  }

  /** The next n bytes, or undefined if the file ends before them (at its very end when n = 4). */
  private read(n: number): Buffer | undefined {
    while (this.buffer.length < n) {
      const chunk = Buffer.allocUnsafe(Math.max(READ_CHUNK_BYTES, n - this.buffer.length));
      const got = fs.readSync(this.fd, chunk, 0, chunk.length, this.offset + this.buffer.length);
      if (got === 0) {
        if (this.buffer.length > 0 && n === 4) {
          this.checker.finished(`in the middle of a frame's length (byte ${this.size})`);
        }
        return undefined;
      }
      this.buffer = this.buffer.length === 0 ? chunk.subarray(0, got) : Buffer.concat([this.buffer, chunk.subarray(0, got)]);
    }
    const bytes = this.buffer.subarray(0, n);
    this.buffer = this.buffer.subarray(n);
    this.offset += n;
    return bytes;
  }
}

/** Reads a whole backup file and checks it; throws KvError (CORRUPT) unless it is complete and intact. */
export function verifyBackupFile(file: string, onProgress?: (progress: BackupProgress) => void): BackupSummary {
  const reader = new BackupFileReader(file, onProgress);
  try {
    reader.header();
    reader.leases();
    const entries = reader.entries();
    while (entries.next().done !== true);
    return reader.finish();
  } finally {
    reader.close();
  }
}

/**
 * Code point order (= UTF-8 byte order), the order of keys in a backup: as
 * JS's UTF-16 order, except that surrogates (characters past U+FFFF) sort
 * after U+E000-U+FFFF.
 */
function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

function codePointRank(unit: number): number {
  if (unit >= 0xd800 && unit <= 0xdfff) return unit + 0x2000;
  return unit >= 0xe000 ? unit - 0x800 : unit;
}

/**
 * kvctl import FILE: a backup file (kvctl backup) written into a running
 * server of either engine through the API, the way from the file engine
 * to etcd. FILE is checked whole before anything is written; then each
 * shared lease is granted anew (kept alive while the import runs), and the
 * keys are set in Txns, a key on a private lease with its ttl. Revisions
 * are the target's own.
 */
import { statSync } from 'node:fs';
import { Command } from 'commander';
import {
  BackupFileReader,
  KvError,
  Op,
  status,
  verifyBackupFile,
  type BackupEntry,
  type BackupLease,
  type BackupProgress,
  type BackupSummary,
  type JsonValue,
  type KeepAliveHandle,
  type KvClient,
  type TxnOp,
} from '@kv/client';
import { asDamaged } from '../backup-errors';
import { CliError } from '../cli-error';
import { EXIT, exitCodeForError } from '../exit-codes';
import { progressBar } from '../progress-bar';
import type { Runner } from '../session';

/** The server's --max-txn-ops default: a Txn of more is refused. */
const MAX_TXN_OPS = 128;
/**
 * About this much of keys and values per Txn (a larger value goes alone,
 * as any Set of it could). Under 512 KiB because etcd reads a request of at
 * most its --max-request-bytes plus 512 KiB: a larger one is cut off by gRPC
 * (RESOURCE_EXHAUSTED, which kv reports as etcd unavailable, not as too
 * large), a smaller one over --max-request-bytes is refused as too large
 * (INVALID_ARGUMENT), and split. The file engine takes 16 MiB and more.
 */
const MAX_TXN_BYTES = 448 * 1024;
/** What one set costs beside its value, as bytes counted here: the key is sent (and, on etcd, compared) more than once. */
const KEY_COPIES = 3;
const OP_OVERHEAD_BYTES = 64;

const NOTHING_IMPORTED = 'nothing was imported';

/** What an import wrote. */
interface Imported {
  keys: number;
  leases: number;
  /** The target revisions its Txns took; undefined if it wrote no key. */
  firstRevision: number | undefined;
  lastRevision: number | undefined;
}

export function importCommand(run: Runner): Command {
  return new Command('import')
    .description(
      'load the backup FILE (kvctl backup) into the running server, of either engine, through the API: FILE is checked whole ' +
        'before anything is written; shared leases are granted anew, a key with a ttl gets it again (times to live start ' +
        "again); revisions are the server's own (watchers see PUT events). Refused if the server holds any key, unless " +
        '--overwrite. Needs write on the keys (and read on every key, to see that the server is empty). Stopped midway, ' +
        'what it wrote stays: run it again with --overwrite',
    )
    .argument('<file>', 'the backup file')
    .option('--overwrite', 'import into a server that holds keys: every key of the backup is set over what is there, others are left alone')
    .action(
      run(async (session, file: string, options: { overwrite?: boolean }) => {
        checkReadable(file);
        const kv = session.kv();
        if (options.overwrite !== true) await refuseUnlessEmpty(kv);
        const checking = progressBar(session.stderr, 'checking ');
        let backup: BackupSummary;
        try {
          backup = verifyBackupFile(file, (progress) => checking.update(progress));
        } catch (error) {
          throw unreadable(error, file);
        } finally {
          checking.stop();
        }
        // Again: checking a large file takes a while, and the server may have taken writes meanwhile.
        if (options.overwrite !== true) await refuseUnlessEmpty(kv);
        const importing = progressBar(session.stderr, 'importing');
        let imported: Imported;
        try {
          imported = await importBackup(kv, file, backup, (progress) => importing.update(progress));
        } finally {
          importing.stop();
        }
        const { keys, leases, firstRevision, lastRevision } = imported;
        const revisions =
          firstRevision === undefined ? '-' : firstRevision === lastRevision ? `${firstRevision}` : `${firstRevision}-${lastRevision}`;
        session.printer.print({
          json: {
            file,
            backupRevision: backup.revision,
            keys,
            leases,
            firstRevision: firstRevision ?? null,
            lastRevision: lastRevision ?? null,
          },
          table: [
            ['FILE', 'BACKUP_REVISION', 'KEYS', 'LEASES', 'REVISIONS'],
            [file, String(backup.revision), String(keys), String(leases), revisions],
          ],
          value: lastRevision === undefined ? '' : String(lastRevision),
        });
      }),
    );
}

/** FILE is read twice (checked, then written), so it must be a regular file kvctl can open: otherwise a usage error (exit 2). */
function checkReadable(file: string): void {
  let problem: string | undefined;
  try {
    const stats = statSync(file);
    if (stats.isDirectory()) problem = 'it is a directory, not a file';
    else if (!stats.isFile()) problem = 'it is not a regular file (import reads it twice: to check it, then to write it)';
  } catch (error) {
    problem = (error as Error).message;
  }
  if (problem !== undefined) throw new CliError(`cannot read ${file}: ${problem}; ${NOTHING_IMPORTED}`);
}

/** A backup file that cannot be opened is exit 2; one that is not a complete, intact backup exit 9. */
function unreadable(error: unknown, file: string): unknown {
  if (error instanceof KvError && error.reason === 'INVALID_ARGUMENT') return new CliError(`${error.message}; ${NOTHING_IMPORTED}`);
  if (error instanceof Error && typeof (error as NodeJS.ErrnoException).code === 'string' && !('metadata' in error)) {
    return new CliError(`cannot read ${file}: ${error.message}; ${NOTHING_IMPORTED}`);
  }
  return asDamaged(error, NOTHING_IMPORTED);
}

async function refuseUnlessEmpty(kv: KvClient): Promise<void> {
  const { keys } = await kv.listKeysPage({ pageSize: 1 });
  if (keys.length > 0) {
    throw new CliError(
      `the server already holds keys: import into an empty server, or pass --overwrite to set the backup's keys over what is there (others are left alone); ${NOTHING_IMPORTED}`,
    );
  }
}

/**
 * Writes the checked backup FILE into the server. A failure once keys were
 * written says how far it got, with the exit code of what failed.
 */
async function importBackup(
  kv: KvClient,
  file: string,
  backup: BackupSummary,
  onProgress: (progress: BackupProgress) => void,
): Promise<Imported> {
  const reader = new BackupFileReader(file);
  const keptAlive: KeepAliveHandle[] = [];
  const txns = new TxnBatches(kv);
  let bytes = 0;
  try {
    reader.header();
    const { shared, privateTtls } = await grantLeases(kv, reader.leases(), keptAlive);
    let leases = shared.size;
    for (const entry of reader.entries()) {
      const { op, privateLease } = setOp(entry, shared, privateTtls);
      if (privateLease) leases++;
      const size = Buffer.byteLength(entry.valueJson) + KEY_COPIES * Buffer.byteLength(entry.key) + OP_OVERHEAD_BYTES;
      bytes += size;
      await txns.add(op, size);
      onProgress({ keys: txns.written, keyCount: backup.keyCount, bytes });
    }
    await txns.flush();
    onProgress({ keys: txns.written, keyCount: backup.keyCount, bytes });
    // Checked again since the first pass: the file could have changed between the two.
    reader.finish();
    return { keys: txns.written, leases, firstRevision: txns.firstRevision, lastRevision: txns.lastRevision };
  } catch (error) {
    throw stoppedMidway(error, txns.written, backup.keyCount);
  } finally {
    // The leases then live out their time to live from the last refresh: about from the end of the import.
    for (const handle of keptAlive) handle.close();
    reader.close();
  }
}

/**
 * Grants each shared lease anew (new ids, so old to new) and keeps it alive
 * until the import ends, so a lease with a short ttl still holds its keys
 * when the last is written; private leases are kept by their ttl.
 */
async function grantLeases(
  kv: KvClient,
  leases: BackupLease[],
  keptAlive: KeepAliveHandle[],
): Promise<{ shared: Map<number, number>; privateTtls: Map<number, number> }> {
  const shared = new Map<number, number>();
  const privateTtls = new Map<number, number>();
  for (const lease of leases) {
    if (lease.private) {
      privateTtls.set(lease.id, lease.ttlMs);
      continue;
    }
    const granted = await kv.grantLease(lease.ttlMs);
    keptAlive.push(kv.keepAlive(granted));
    shared.set(lease.id, granted.id);
  }
  return { shared, privateTtls };
}

/** The set that writes one backup entry: on its new shared lease, or with its private lease's ttl. */
function setOp(entry: BackupEntry, shared: Map<number, number>, privateTtls: Map<number, number>): { op: TxnOp; privateLease: boolean } {
  // The value's JSON as the source store kept it; the target checks and keeps it the same way.
  const value = JSON.parse(entry.valueJson) as JsonValue;
  const ttlMs = privateTtls.get(entry.lease);
  if (ttlMs !== undefined) return { op: Op.set(entry.key, value, { ttlMs }), privateLease: true };
  // The file was checked: every lease a key names is one of its leases.
  return { op: Op.set(entry.key, value, { lease: shared.get(entry.lease) ?? 0 }), privateLease: false };
}

/**
 * A failure once the writing began: says whether keys were written, and if
 * so how far it got and how to finish. A server that did not answer before
 * any key was written is left to the session, which names the endpoints.
 */
function stoppedMidway(error: unknown, written: number, keyCount: number): unknown {
  if (!(error instanceof KvError)) return error;
  if (written === 0 && (error.code === status.UNAVAILABLE || error.code === status.DEADLINE_EXCEEDED)) return error;
  const code = error.reason === 'CORRUPT' ? EXIT.damaged : exitCodeForError(error);
  const what = error.reason === 'CORRUPT' ? error.message : `${error.message} (${error.reason})`;
  if (written === 0) return new CliError(`${what}; no key was imported`, code);
  return new CliError(
    `${what}; the import stopped after ${written} of ${keyCount} keys, which stay written: run it again with --overwrite`,
    code,
  );
}

/**
 * Sets collected into Txns of at most MAX_TXN_OPS ops and about
 * MAX_TXN_BYTES. A Txn the server refuses as too large or of too many ops
 * (its own --max-txn-ops, etcd's request limit) is split in two and each
 * half sent, and later Txns are kept as small: a refused Txn wrote nothing.
 */
class TxnBatches {
  written = 0;
  firstRevision: number | undefined;
  lastRevision: number | undefined;
  private ops: TxnOp[] = [];
  private sizes: number[] = [];
  private bytes = 0;
  private maxOps = MAX_TXN_OPS;
  private maxBytes = MAX_TXN_BYTES;

  constructor(private readonly kv: KvClient) {}

  async add(op: TxnOp, size: number): Promise<void> {
    if (this.ops.length > 0 && (this.ops.length >= this.maxOps || this.bytes + size > this.maxBytes)) await this.flush();
    this.ops.push(op);
    this.sizes.push(size);
    this.bytes += size;
  }

  async flush(): Promise<void> {
    if (this.ops.length === 0) return;
    const [ops, sizes] = [this.ops, this.sizes];
    this.ops = [];
    this.sizes = [];
    this.bytes = 0;
    await this.commit(ops, sizes);
  }

  private async commit(ops: TxnOp[], sizes: number[]): Promise<void> {
    try {
      const { revision } = await this.kv
        .txn()
        .then(...ops)
        .commit();
      this.firstRevision ??= revision;
      this.lastRevision = revision;
      this.written += ops.length;
    } catch (error) {
      if (ops.length < 2 || !refusedAsTooLarge(error)) throw error;
      const half = Math.ceil(ops.length / 2);
      this.maxOps = Math.min(this.maxOps, half);
      this.maxBytes = Math.min(this.maxBytes, Math.max(...[sizes.slice(0, half), sizes.slice(half)].map(sum)));
      await this.commit(ops.slice(0, half), sizes.slice(0, half));
      await this.commit(ops.slice(half), sizes.slice(half));
    }
  }
}

/**
 * Whether the server refused a Txn that a smaller one could pass, which it
 * does before writing anything: too many ops or too large a request
 * (INVALID_ARGUMENT with reason INVALID_ARGUMENT, from kv or etcd), or a
 * request over gRPC's message limit (RESOURCE_EXHAUSTED, no kv reason: the
 * SDK says TOO_LARGE). A key or value the server refuses (INVALID_KEY,
 * TOO_LARGE, INVALID_VALUE) would be refused alone too.
 */
function refusedAsTooLarge(error: unknown): boolean {
  if (!(error instanceof KvError)) return false;
  if (error.code === status.INVALID_ARGUMENT) return error.reason === 'INVALID_ARGUMENT';
  return error.code === status.RESOURCE_EXHAUSTED && error.reason === 'TOO_LARGE';
}

const sum = (sizes: number[]): number => sizes.reduce((a, b) => a + b, 0);

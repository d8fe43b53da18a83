/**
 * kvctl import FILE: a backup file (kvctl backup) written into a running
 * server of either engine through the API, the way from the file engine
 * to etcd. FILE is checked whole before anything is written; then the
 * keys are set in Txns, a key on a shared lease on that lease granted anew
 * (just before its first key is sent; kept alive while the import runs), a
 * key on a private lease with its ttl. Revisions are the target's own. A
 * failure or a signal leaves the keys written and the leases holding them;
 * the leases granted for keys not written are revoked.
 */
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
import { checkBackupFileArgument } from '../backup-file-argument';
import { CliError } from '../cli-error';
import { EXIT, exitCodeForError } from '../exit-codes';
import { progressBar } from '../progress-bar';
import type { Runner } from '../session';
import { Interrupted, StopOnSignal } from '../stop-on-signal';

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
        'before anything is written (so it must be a regular file, not - or a pipe); shared leases are granted anew, a key ' +
        "with a ttl gets it again (times to live start again); revisions are the server's own (watchers see PUT events). " +
        'Refused if the server holds any key (exit 3), unless --overwrite. Needs write on the keys (and read on every key, to see ' +
        'that the server is empty). Stopped midway (an error, Ctrl-C), what it wrote stays: run it again with --overwrite',
    )
    .argument('<file>', 'the backup file (a regular file: it is read twice)')
    .option('--overwrite', 'import into a server that holds keys: every key of the backup is set over what is there, others are left alone')
    .action(
      run(async (session, file: string, options: { overwrite?: boolean }) => {
        checkBackupFileArgument(file, 'import', NOTHING_IMPORTED);
        const checking = progressBar(session.stderr, 'checking ');
        let backup: BackupSummary;
        try {
          backup = verifyBackupFile(file, (progress) => checking.update(progress));
        } catch (error) {
          throw unreadable(error, file);
        } finally {
          checking.stop();
        }
        // The server is asked only once the file is known to be whole: a damaged file is the problem to report (exit 9).
        const kv = session.kv();
        if (options.overwrite !== true) await refuseUnlessEmpty(kv);
        const importing = progressBar(session.stderr, 'importing');
        // From here a signal does not kill kvctl at once: the import stops after the Txn in flight and says how far it got.
        const stop = new StopOnSignal();
        let imported: Imported;
        try {
          imported = await importBackup(kv, file, backup, (progress) => importing.update(progress), stop);
        } catch (error) {
          if (!(error instanceof Interrupted)) throw error;
          importing.stop();
          session.warn(error.message);
          return stop.dieOf(error.signal);
        } finally {
          stop.close();
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
      EXIT.conflict,
    );
  }
}

/**
 * Writes the checked backup FILE into the server. A failure or a signal
 * once it began revokes the leases it granted that hold no key it wrote,
 * and says how far it got (a failure with the exit code of what failed).
 */
async function importBackup(
  kv: KvClient,
  file: string,
  backup: BackupSummary,
  onProgress: (progress: BackupProgress) => void,
  stop: StopOnSignal,
): Promise<Imported> {
  // The bytes of FILE read so far: the checking bar's count, so both bars end at the file's size.
  let fileBytes = 0;
  const reader = new BackupFileReader(file, (progress) => (fileBytes = progress.bytes));
  const leases = new ImportLeases(kv, stop);
  const txns = new TxnBatches(kv, leases, stop);
  try {
    reader.header();
    leases.take(reader.leases());
    for (const entry of reader.entries()) {
      const { op, lease } = await leases.setOp(entry);
      const size = Buffer.byteLength(entry.valueJson) + KEY_COPIES * Buffer.byteLength(entry.key) + OP_OVERHEAD_BYTES;
      await txns.add(op, size, lease);
      onProgress({ keys: txns.written, keyCount: backup.keyCount, bytes: fileBytes });
    }
    await txns.flush();
    onProgress({ keys: txns.written, keyCount: backup.keyCount, bytes: fileBytes });
    // Checked again since the first pass: the file could have changed between the two.
    reader.finish();
    return {
      keys: txns.written,
      leases: leases.granted + leases.privateKeys,
      firstRevision: txns.firstRevision,
      lastRevision: txns.lastRevision,
    };
  } catch (error) {
    const unrevoked = await leases.revokeUnused();
    const leftLeases =
      unrevoked === 0 ? '' : ` (${unrevoked} leases it granted for keys not written could not be revoked: they expire after their ttl)`;
    if (error instanceof Interrupted) {
      throw new Interrupted(error.signal, `${stoppedAt(`interrupted (${error.signal})`, txns.written, backup.keyCount)}${leftLeases}`);
    }
    throw stoppedMidway(error, txns.written, backup.keyCount, leftLeases);
  } finally {
    // The leases then live out their time to live from the last refresh: about from the end of the import.
    leases.close();
    reader.close();
  }
}

/**
 * The leases an import puts keys on. A shared lease is granted anew (a new
 * id, so old to new) just before its first key is sent, and kept alive
 * until the import ends, so a lease with a short ttl still holds its keys
 * when the last is written; one that holds no key is not granted at all
 * (its new id would be known to no one). A private lease is a ttl on its
 * key's set.
 */
class ImportLeases {
  /** How many shared leases were granted, and how many keys were given a private lease's ttl. */
  granted = 0;
  privateKeys = 0;
  private readonly sharedTtls = new Map<number, number>();
  private readonly privateTtls = new Map<number, number>();
  /** Backup lease id to the lease granted for it. */
  private readonly grants = new Map<number, number>();
  /** The granted leases a Txn that succeeded put a key on. */
  private readonly holding = new Set<number>();
  private readonly keptAlive: KeepAliveHandle[] = [];

  constructor(
    private readonly kv: KvClient,
    private readonly stop: StopOnSignal,
  ) {}

  take(leases: BackupLease[]): void {
    for (const lease of leases) (lease.private ? this.privateTtls : this.sharedTtls).set(lease.id, lease.ttlMs);
  }

  /** The set that writes one backup entry, and the granted lease it puts the key on (0 if none). */
  async setOp(entry: BackupEntry): Promise<{ op: TxnOp; lease: number }> {
    // The value's JSON as the source store kept it; the target checks and keeps it the same way.
    const value = JSON.parse(entry.valueJson) as JsonValue;
    const ttlMs = this.privateTtls.get(entry.lease);
    if (ttlMs !== undefined) {
      this.privateKeys++;
      return { op: Op.set(entry.key, value, { ttlMs }), lease: 0 };
    }
    // The file was checked: every lease a key names is one of its leases.
    const lease = entry.lease === 0 ? 0 : await this.grantFor(entry.lease);
    return { op: Op.set(entry.key, value, { lease }), lease };
  }

  /** A Txn that put keys on these leases succeeded. */
  wrote(leases: number[]): void {
    for (const lease of leases) if (lease !== 0) this.holding.add(lease);
  }

  /** Revokes the leases granted that hold no key written; returns how many could not be revoked. */
  async revokeUnused(): Promise<number> {
    const unused = [...this.grants.values()].filter((id) => !this.holding.has(id));
    // At most the leases of the Txns not written (a Txn or two): at once, so a server that does not answer costs one deadline.
    const outcomes = await Promise.allSettled(unused.map((id) => this.kv.revokeLease(id)));
    return outcomes.filter((outcome) => outcome.status === 'rejected' && !leaseGone(outcome.reason)).length;
  }

  close(): void {
    for (const handle of this.keptAlive) handle.close();
  }

  private async grantFor(backupLease: number): Promise<number> {
    const known = this.grants.get(backupLease);
    if (known !== undefined) return known;
    this.stop.check();
    const granted = await this.kv.grantLease(this.sharedTtls.get(backupLease) ?? 0);
    this.grants.set(backupLease, granted.id);
    this.keptAlive.push(this.kv.keepAlive(granted));
    this.granted++;
    return granted.id;
  }
}

/** A lease that is not there to revoke (it expired meanwhile): nothing left behind. */
const leaseGone = (error: unknown): boolean => error instanceof KvError && error.code === status.NOT_FOUND;

/** "<what>; no key was imported", or how far it got and how to finish. */
function stoppedAt(what: string, written: number, keyCount: number): string {
  if (written === 0) return `${what}; no key was imported`;
  return `${what}; the import stopped after ${written} of ${keyCount} keys, which stay written: run it again with --overwrite`;
}

/**
 * A failure once the writing began: says whether keys were written, and if
 * so how far it got and how to finish. A server that did not answer before
 * any key was written is left to the session, which names the endpoints.
 */
function stoppedMidway(error: unknown, written: number, keyCount: number, leftLeases: string): unknown {
  if (!(error instanceof KvError)) return error;
  if (written === 0 && leftLeases === '' && (error.code === status.UNAVAILABLE || error.code === status.DEADLINE_EXCEEDED)) return error;
  const code = error.reason === 'CORRUPT' ? EXIT.damaged : exitCodeForError(error);
  const what = error.reason === 'CORRUPT' ? error.message : `${error.message} (${error.reason})`;
  return new CliError(`${stoppedAt(what, written, keyCount)}${leftLeases}`, code);
}

/**
 * Sets collected into Txns of at most MAX_TXN_OPS ops and about
 * MAX_TXN_BYTES. A Txn the server refuses as too large or of too many ops
 * (its own --max-txn-ops, etcd's request limit) is split in two and each
 * half sent, and later Txns are kept as small: a refused Txn wrote nothing.
 * After a signal, the next Txn is not sent.
 */
class TxnBatches {
  written = 0;
  firstRevision: number | undefined;
  lastRevision: number | undefined;
  private pending: Pending[] = [];
  private bytes = 0;
  private maxOps = MAX_TXN_OPS;
  private maxBytes = MAX_TXN_BYTES;

  constructor(
    private readonly kv: KvClient,
    private readonly leases: ImportLeases,
    private readonly stop: StopOnSignal,
  ) {}

  async add(op: TxnOp, size: number, lease: number): Promise<void> {
    if (this.pending.length > 0 && (this.pending.length >= this.maxOps || this.bytes + size > this.maxBytes)) await this.flush();
    this.pending.push({ op, size, lease });
    this.bytes += size;
  }

  async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const sets = this.pending;
    this.pending = [];
    this.bytes = 0;
    await this.commit(sets);
  }

  private async commit(sets: Pending[]): Promise<void> {
    this.stop.check();
    try {
      const { revision } = await this.kv
        .txn()
        .then(...sets.map((set) => set.op))
        .commit();
      this.firstRevision ??= revision;
      this.lastRevision = revision;
      this.written += sets.length;
      this.leases.wrote(sets.map((set) => set.lease));
    } catch (error) {
      if (sets.length < 2 || !refusedAsTooLarge(error)) throw error;
      const halves = [sets.slice(0, Math.ceil(sets.length / 2)), sets.slice(Math.ceil(sets.length / 2))];
      this.maxOps = Math.min(this.maxOps, halves[0].length);
      this.maxBytes = Math.min(this.maxBytes, Math.max(...halves.map((half) => sum(half.map((set) => set.size)))));
      for (const half of halves) await this.commit(half);
    }
  }
}

/** A set waiting for its Txn: its size as counted against MAX_TXN_BYTES, the granted lease it puts its key on (or 0). */
interface Pending {
  op: TxnOp;
  size: number;
  lease: number;
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

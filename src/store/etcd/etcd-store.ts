/**
 * The KeyValueStore contract over an etcd v3 cluster (docs/scaling.md has
 * the whole mapping). Revisions are etcd's: the store revision is etcd's
 * cluster-wide revision, and create_revision, mod_revision and version are
 * etcd's own fields of the key, so they mean the same as in the file engine.
 * Values are the JSON text kv stores anywhere (etcdctl shows it as is).
 *
 * - get: a linearizable Range of one key.
 * - set / delete: a Put / DeleteRange; with expectedRevision, a Txn that
 *   compares the key's mod_revision (0 for a missing key, as etcd compares)
 *   and, on a mismatch, reads the key for the error's current revision.
 *   A private lease (a set's ttlMs; etcd-leases.ts tells one by its ID) is
 *   revoked right after the write that took its key off it succeeds (the
 *   Put or DeleteRange returns the key's previous lease; a Clear reads its
 *   keys' leases in the same etcd Txn): etcd cannot revoke inside a Txn. A
 *   set naming a private lease is a Txn that compares the key's lease: only
 *   the key that holds it may name it.
 * - listKeys: keys-only Ranges in etcd's byte order (= code point order),
 *   pinned to one revision when a listing takes several.
 * - clear: one DeleteRange, so one revision however many keys it removes.
 * - watch: an etcd watch (etcd-watch.ts); from now = after etcd's current
 *   revision, read linearizably as the watch begins.
 *
 * Reads are retried while etcd is briefly unavailable; writes are sent once
 * and a lost answer is reported as BackendUnavailableError (the write may
 * or may not have happened), never retried blindly. While etcd does not
 * answer, `failure` says so (health reports NOT_SERVING).
 */
import {
  EtcdLeaseInvalidError,
  GRPCNotFoundError,
  type Etcd3,
  type ICompare,
  type IKeyValue,
  type IPutRequest,
  type IRangeResponse,
  type IRequestOp,
  type IResponseHeader,
  type IResponseOp,
} from 'etcd3';
import {
  AbstractKeyValueStore,
  type StoreLimits,
  type ValidClear,
  type ValidDelete,
  type ValidList,
  type ValidSet,
  type ValidTxn,
  type ValidTxnOp,
  type ValidUpdate,
  type ValidWatch,
  DEFAULT_MAX_TXN_OPS,
} from '../abstract-key-value-store';
import {
  BackendRefusedError,
  BackendUnavailableError,
  NotSentError,
  InvalidArgumentError,
  LeaseNotFoundError,
  LeasePrivateError,
  NotSupportedError,
  RevisionMismatchError,
  StoreClosedError,
  WriteConflictError,
} from '../errors';
import type {
  ClearResult,
  DeleteResult,
  Entry,
  Lease,
  LeaseInfo,
  ListLeasesResult,
  ListEntriesResult,
  ListResult,
  SetResult,
  StoreSnapshot,
  StoreStats,
  TxnResult,
  Watch,
} from '../key-value-store';
import type { StoredEntry } from '../change';
import { EtcdLeases, isPrivateLease } from './etcd-leases';
import { DEFAULT_MAX_PER_KEY, KeyQueue } from './key-queue';
import { runOptimisticTxn, TXN_FIRST_PAUSE_MS, TXN_MAX_PAUSE_MS, type AppliedTxn } from './etcd-txn';
import {
  attemptMsOf,
  connectEtcd,
  DEFAULT_CALL_TIMEOUT_MS,
  readWithRetry,
  schemeMismatch,
  writeOnce,
  type AttemptOptions,
  type EtcdConnectionOptions,
} from './etcd-connection';
import { isOutage, notReachedAtStart, notReachedByProbe, readPinned, schemeMayBeWrong } from './etcd-errors';
import { EtcdKeyspace, keyAfter, toEntry } from './etcd-keyspace';
import { EtcdWatch } from './etcd-watch';

export interface EtcdStoreOptions extends EtcdConnectionOptions {
  /** The etcd key prefix every kv key is stored under (default "kv/"). */
  prefix?: string;
  maxKeyBytes?: number;
  maxValueBytes?: number;
  /** etcd's --max-request-bytes (default 1.5 MiB, etcd's default): kv's limits must fit in it. */
  maxRequestBytes?: number;
  /** kv's --max-txn-ops (default 128, etcd's default --max-txn-ops, which kv cannot read: set no higher than it). */
  maxTxnOps?: number;
  /** --watch-progress-ms: a watch with nothing to receive gets a batch without events this often (default 5000). */
  watchProgressMs?: number;
}

export const DEFAULT_ETCD_PREFIX = 'kv/';
export const ETCD_DEFAULT_MAX_REQUEST_BYTES = 1572864;
/** --watch-progress-ms's default, as for the file engine. */
const DEFAULT_WATCH_PROGRESS_MS = 5000;
/** Room a conditional write needs besides its key and value: the Txn's compare, the failure read, framing. */
const WRITE_OVERHEAD_BYTES = 1024;
/** Keys per Range while listing: bounded responses, however many keys match. */
const LIST_CHUNK = 1000;
/** A Backup's lease lookups in flight at once. */
const LEASE_LOOKUPS = 16;
/**
 * A Backup's time to live for a lease its keys held at the backup's
 * revision that etcd no longer has when asked: etcd's least (1 s). After a
 * restore or import those keys go then, unless their owner keeps them alive.
 */
export const ENDED_LEASE_TTL_MS = 1000;
/** What a call's success showed etcd permits this server (EtcdStore.refused). */
type Permitted = 'write' | 'read' | 'nothing';

/** With no call settled for this long, reading `failure` asks etcd whether it answers. */
const PROBE_AFTER_MS = 1000;

/** A watch from now still asking etcd where now is, and the changes this store made meanwhile (their revisions). */
interface StartingWatch {
  changes: Array<Promise<number | undefined>>;
}

export class EtcdStore extends AbstractKeyValueStore {
  private observedRevision: number;
  private readonly inflight = new Set<Promise<unknown>>();
  private readonly watches = new Set<EtcdWatch>();
  private readonly startingWatches = new Set<StartingWatch>();
  private readonly leases: EtcdLeases;
  /** Transactions and updates of one key from this frontend, one at a time (they would only conflict with each other in etcd). */
  private readonly keyQueue = new KeyQueue({
    maxPerKey: DEFAULT_MAX_PER_KEY,
    tooMany: (key, max) =>
      new NotSentError(
        `too many writes are queued on key ${JSON.stringify(key)} in this frontend (${max}, waiting for etcd); nothing was applied: try again later`,
      ),
    tooLate: (key, waitedMs) =>
      new NotSentError(
        `the write waited ${waitedMs} ms behind other writes of key ${JSON.stringify(key)} in this frontend (etcd is slow) and ran out of time (--etcd-timeout-ms ${this.callTimeoutMs}); it was not sent to etcd, nothing was applied: try again`,
      ),
  });
  /** Why etcd does not answer, while the last call to settle (or probe) found it so. */
  private unavailable: Error | undefined;
  /**
   * Why etcd refuses this server (its user or its role), since a call met that; cleared
   * by a later call of the kind refused (a write, if a write was) that succeeds, or by a probe of that kind.
   */
  private refused: BackendRefusedError | undefined;
  /** How many times `refused` was cleared: a probe that was out meanwhile (and met the refusal before the fix) is stale. */
  private refusalsCleared = 0;
  private lastAnswerAt = Date.now();
  private lastProbeAt = 0;
  private probing = false;
  private closed = false;

  constructor(
    private readonly client: Etcd3,
    private readonly keyspace: EtcdKeyspace,
    limits: StoreLimits,
    private readonly callTimeoutMs: number,
    startRevision: number,
    private readonly progressMs: number,
  ) {
    super(limits);
    this.observedRevision = startRevision;
    this.leases = new EtcdLeases(client, keyspace, callTimeoutMs);
  }

  /**
   * Set while etcd does not answer — unreachable, without a leader, every
   * member's circuit open — as a probe found it (a linearizable read, tried
   * on other members within the call deadline, each try with a quarter of
   * it; a call that gets no answer starts one); cleared by the next call that gets an answer. With no call
   * settled for a second, reading it also probes, so it follows etcd when
   * nothing else does: the server reads it every second for health.
   */
  get failure(): Error | undefined {
    this.probeIfIdle();
    return this.unavailable ?? this.refused;
  }

  /** etcd's revisions are its own: kv cannot tell when a cluster was restored from a snapshot. */
  readonly historyId = undefined;

  /**
   * A watch with nothing to receive gets a batch this often, current to the revision it was last given (etcd-watch.ts):
   * etcd's own progress, which also tells it etcd's later revisions, comes at etcd's
   * --experimental-watch-progress-notify-interval, which kv cannot read.
   */
  get watchProgressMs(): number {
    return this.progressMs;
  }

  /** The newest etcd revision this store has seen in any answer (etcd's revision is cluster-wide). */
  get revision(): number {
    return this.observedRevision;
  }

  protected _get(key: string): Promise<Entry | undefined> {
    return this.trackRead(async () => {
      const res = await this.read((attempt) => this.client.kv.range({ key: this.keyspace.key(key) }, attempt));
      const kv = res.kvs[0];
      if (kv === undefined) return undefined;
      return this.toEntry(key, kv);
    });
  }

  protected _set(op: ValidSet): Promise<SetResult> {
    return this.track(
      async () => {
        const ttlLease = op.ttlMs === undefined ? undefined : (await this.leases.grant(op.ttlMs, true)).id;
        const lease = ttlLease ?? op.lease;
        const put = { ...this.putRequest(op, lease), prev_kv: true };
        const namesPrivate = isPrivateLease(op.lease) ? op.lease : 0;
        let prev: IKeyValue | undefined;
        let revision: number;
        try {
          if (op.expectedRevision === undefined && namesPrivate === 0) {
            const res = await writeOnce(() => this.client.kv.put(put));
            revision = this.observe(res.header);
            prev = res.prev_kv ?? undefined;
          } else {
            const onSuccess = (r: IResponseOp): void => {
              prev = r.response_put.prev_kv ?? undefined;
            };
            revision = await this.conditional(
              op.key,
              put.key as Buffer,
              op.expectedRevision,
              { request_put: put },
              onSuccess,
              namesPrivate,
            );
          }
        } catch (error) {
          // A private lease of a write that certainly did not happen would hold nothing until its ttl.
          if (ttlLease !== undefined && !(error instanceof BackendUnavailableError)) await this.revokeUnused([ttlLease]);
          throw this.leaseError(error, op.lease);
        }
        await this.releasePrivateLeases(prev === undefined ? [] : [prev], lease);
        return { revision };
      },
      (result) => result.revision,
    );
  }

  protected _delete(op: ValidDelete): Promise<DeleteResult> {
    return this.track(
      async () => {
        const key = this.keyspace.key(op.key);
        if (op.expectedRevision === undefined) {
          const res = await writeOnce(() => this.client.kv.deleteRange({ key, prev_kv: true }));
          await this.releasePrivateLeases(res.prev_kvs, 0);
          return { deleted: Number(res.deleted) > 0, revision: this.observe(res.header) };
        }
        let deleted: IKeyValue[] = [];
        const revision = await this.conditional(op.key, key, op.expectedRevision, { request_delete_range: { key, prev_kv: true } }, (r) => {
          deleted = r.response_delete_range.prev_kvs;
        });
        await this.releasePrivateLeases(deleted, 0);
        return { deleted: deleted.length > 0, revision };
      },
      (result) => (result.deleted ? result.revision : undefined),
    );
  }

  protected _listKeys(op: ValidList): Promise<ListResult> {
    return this.trackRead(async () => {
      const range = this.keyspace.prefixRange(op.prefix);
      let start = range.key;
      if (op.startAfter !== undefined) {
        const after = keyAfter(this.keyspace.key(op.startAfter));
        if (Buffer.compare(after, start) > 0) start = after;
      }
      if (op.limit === 0) {
        const res = await this.rangeKeys(start, range.rangeEnd, 1, 0);
        return { keys: [], more: res.kvs.length > 0, revision: Number(res.header.revision) };
      }
      const from = start;
      return readPinned('the listing', async () => {
        const keys: string[] = [];
        let revision = 0;
        start = from;
        for (;;) {
          const want = Math.min(LIST_CHUNK, op.limit - keys.length);
          const res = await this.rangeKeys(start, range.rangeEnd, want, revision);
          // Later chunks read the same revision as the first: one consistent listing. (A header gives etcd's
          // revision now, not the one a Range was pinned to: only the first chunk's is the listing's.)
          if (revision === 0) revision = Number(res.header.revision);
          for (const kv of res.kvs) keys.push(this.keyspace.decodeKey(kv.key));
          if (!res.more) return { keys, more: false, revision };
          if (keys.length >= op.limit) return { keys, more: true, revision };
          start = keyAfter(lastKey(res.kvs));
        }
      });
    });
  }

  protected _list(op: ValidList): Promise<ListEntriesResult> {
    return this.trackRead(async () => {
      const range = this.keyspace.prefixRange(op.prefix);
      let start = range.key;
      if (op.startAfter !== undefined) {
        const after = keyAfter(this.keyspace.key(op.startAfter));
        if (Buffer.compare(after, start) > 0) start = after;
      }
      const from = start;
      return readPinned('the listing', async () => {
        const entries: Entry[] = [];
        let revision = 0;
        start = from;
        for (;;) {
          const want = Math.max(1, Math.min(LIST_CHUNK, op.limit - entries.length));
          const res = await this.read((attempt) =>
            this.client.kv.range({ key: start, range_end: range.rangeEnd, limit: want, revision }, attempt),
          );
          // The first chunk's revision is the listing's (as in _listKeys).
          if (revision === 0) revision = Number(res.header.revision);
          if (op.limit === 0) return { entries: [], more: res.kvs.length > 0, revision };
          for (const kv of res.kvs) entries.push(this.toEntry(this.keyspace.decodeKey(kv.key), kv));
          if (!res.more) return { entries, more: false, revision };
          if (entries.length >= op.limit) return { entries, more: true, revision };
          start = keyAfter(lastKey(res.kvs));
        }
      });
    });
  }

  protected _update(op: ValidUpdate): Promise<Entry> {
    return this.track(
      async () => {
        const update = { compare: [], success: [{ type: 'update' as const, ...op }], failure: [], deadline: op.deadline };
        const result = await this.transact(update, op.expectedRevision, false);
        const only = result.results[0];
        if (only?.type !== 'update') throw new Error('etcd update: no result');
        return only.entry;
      },
      (entry) => entry.modRevision,
      true,
    );
  }

  protected _txn(op: ValidTxn): Promise<TxnResult> {
    return this.track(
      () => this.transact(op, undefined, true),
      (result) => (result.results.some(changes) ? result.revision : undefined),
      true,
    );
  }

  protected _grantLease(ttlMs: number): Promise<Lease> {
    return this.track(() => this.leases.grant(ttlMs));
  }

  protected _keepAliveLease(id: number): Promise<Lease> {
    return this.track(() => this.leases.keepAlive(id));
  }

  protected _revokeLease(id: number): Promise<ClearResult> {
    return this.track(
      async () => {
        const { revision, deletedCount } = await this.leases.revoke(id);
        return { deletedCount, revision: this.observeRevision(revision) };
      },
      (result) => (result.deletedCount > 0 ? result.revision : undefined),
    );
  }

  protected _leaseInfo(id: number, keys: boolean): Promise<LeaseInfo> {
    return this.track(() => this.leases.info(id, keys));
  }

  protected _clear(op: ValidClear): Promise<ClearResult> {
    return this.track(
      async () => {
        const { key, rangeEnd } = this.keyspace.prefixRange(op.prefix);
        // The keys (with their leases, not their values) and their deletion, at one revision.
        const res = await writeOnce(() =>
          this.client.kv.txn({
            success: [
              { request_range: { key, range_end: rangeEnd, keys_only: true } },
              { request_delete_range: { key, range_end: rangeEnd } },
            ],
          }),
        );
        await this.releasePrivateLeases(res.responses[0]?.response_range.kvs ?? [], 0);
        return { deletedCount: Number(res.responses[1]?.response_delete_range.deleted ?? 0), revision: this.observe(res.header) };
      },
      (result) => (result.deletedCount > 0 ? result.revision : undefined),
    );
  }

  /** Not here: etcd's lease table is the cluster's, not this prefix's (a Backup takes the leases its keys hold). */
  protected _listLeases(): Promise<ListLeasesResult> {
    return Promise.reject(
      new NotSupportedError(
        "ListLeases is not supported on the etcd engine: etcd's leases are the whole cluster's, not this prefix's; list them with `etcdctl lease list`",
      ),
    );
  }

  /**
   * Every key under the prefix at one revision (Ranges pinned to the first
   * one's revision, read into memory whole), and the leases those keys are
   * attached to, each asked of etcd (its granted time to live) as soon as
   * the Range that names it is read. etcd keeps no past state of leases: one
   * that ended (or was replaced, as a set with ttlMs replaces its key's)
   * before it was asked is kept with ENDED_LEASE_TTL_MS, its keys with it,
   * as they were at that revision. Leases that hold no key under the prefix
   * are not this prefix's to back up (etcd's leases are the cluster's).
   */
  protected _snapshot(): Promise<StoreSnapshot> {
    return this.trackRead(() =>
      readPinned('the backup', async () => {
        const range = this.keyspace.prefixRange('');
        const entries: Array<[string, StoredEntry]> = [];
        const ttls = new Map<number, number>();
        let start = range.key;
        let revision = 0;
        for (;;) {
          const res = await this.read((attempt) =>
            this.client.kv.range({ key: start, range_end: range.rangeEnd, limit: LIST_CHUNK, revision }, attempt),
          );
          // The first Range's revision is the backup's: a header gives etcd's revision now, not the one asked for.
          if (revision === 0) revision = Number(res.header.revision);
          const named = new Set<number>();
          for (const kv of res.kvs) {
            const key = this.keyspace.decodeKey(kv.key);
            const stored = this.keyspace.decodeEntry(kv, key).stored;
            entries.push([key, stored]);
            if (stored.lease !== 0 && !ttls.has(stored.lease)) named.add(stored.lease);
          }
          await this.lookUpLeases([...named], ttls);
          if (!res.more) break;
          start = keyAfter(lastKey(res.kvs));
        }
        const leases: Lease[] = [...ttls]
          .map(([id, ttlMs]) => ({ id, ttlMs, ...(isPrivateLease(id) ? { private: true } : {}) }))
          .sort((a, b) => a.id - b.id);
        return {
          revision,
          keyCount: entries.length,
          leases,
          entries: () => entries,
          release: () => undefined,
        };
      }),
    );
  }

  /** Each lease's granted time to live into `ttls` (ENDED_LEASE_TTL_MS for one etcd no longer has), LEASE_LOOKUPS at a time. */
  private async lookUpLeases(ids: number[], ttls: Map<number, number>): Promise<void> {
    for (let i = 0; i < ids.length; i += LEASE_LOOKUPS) {
      await Promise.all(
        ids.slice(i, i + LEASE_LOOKUPS).map(async (id) => {
          try {
            ttls.set(id, (await this.leases.info(id, false)).ttlMs);
          } catch (error) {
            if (!(error instanceof LeaseNotFoundError)) throw error;
            ttls.set(id, ENDED_LEASE_TTL_MS);
          }
        }),
      );
    }
  }

  stats(): StoreStats {
    return { revision: this.observedRevision, watchers: this.watches.size };
  }

  protected _watch(op: ValidWatch): Watch {
    const watch = new EtcdWatch(this.client, this.keyspace, op, {
      startsAfter: op.startRevision === 0 ? this.now() : undefined,
      unavailableAfterMs: this.callTimeoutMs,
      progressMs: this.progressMs,
      onEnd: (w) => this.watches.delete(w),
    });
    this.watches.add(watch);
    return watch;
  }

  /**
   * Where a watch from now starts: after etcd's current revision, read
   * linearizably (so after every write acknowledged anywhere before the
   * watch began, whichever frontend made it) — but before any change this
   * store makes once the watch has begun, which can reach etcd before that
   * read does: a caller that watches, then writes, sees its write.
   */
  private async now(): Promise<number> {
    const starting: StartingWatch = { changes: [] };
    this.startingWatches.add(starting);
    let current: number;
    try {
      current = Number((await this.read((attempt) => this.client.kv.range(this.probeRequest(), attempt))).header.revision);
    } finally {
      this.startingWatches.delete(starting);
    }
    let after = current;
    for (const revision of await Promise.all(starting.changes)) {
      if (revision !== undefined && revision <= after) after = revision - 1;
    }
    return after;
  }

  /** The cheapest linearizable read: one key that is never a kv key (the prefix itself), counted. */
  private probeRequest(): { key: Buffer; count_only: true } {
    return { key: this.keyspace.prefixRange('').key, count_only: true };
  }

  /**
   * A write that etcd checks as one (permission for the put included) and never applies (no key's version is below
   * 0): asks whether etcd still refuses this server's writes.
   */
  private writeProbeRequest(): { compare: ICompare[]; success: IRequestOp[] } {
    const key = this.keyspace.prefixRange('').key;
    return {
      compare: [{ key, target: 'Version', result: 'Less', version: 0 }],
      success: [{ request_put: { key, value: Buffer.alloc(0) } }],
    };
  }

  /**
   * At open, whether etcd lets this server write (the write probe, never applied): a role that only reads is refused
   * at the first write otherwise, and health said SERVING until then, in each --workers process until its own first
   * write. Any other failure is left to the calls and the probes that follow.
   */
  async askWritesAtOpen(): Promise<void> {
    try {
      await readWithRetry((attempt) => this.client.kv.txn(this.writeProbeRequest(), attempt), this.callTimeoutMs, 'write');
    } catch (error) {
      if (error instanceof BackendRefusedError) this.refused = error;
    }
  }

  /** Asks etcd whether it answers when no call has said so for a while. */
  private probeIfIdle(): void {
    const now = Date.now();
    // While etcd refuses this server, also when calls of another kind keep succeeding: only a probe may see it end.
    if (now - this.lastAnswerAt >= PROBE_AFTER_MS || (this.refused !== undefined && now - this.lastProbeAt >= PROBE_AFTER_MS)) this.probe();
  }

  /**
   * Asks etcd whether it answers, unless a probe is already out: a read,
   * retried on the other members within the call deadline, each try with a
   * quarter of it (readWithRetry), so that one dead or hung member is not
   * taken for the cluster.
   */
  private probe(): void {
    if (this.closed || this.probing) return;
    this.probing = true;
    this.lastProbeAt = Date.now();
    const cleared = this.refusalsCleared;
    // While etcd refuses this server's writes, the probe is a write (never applied), so that it sees when that ends.
    const write = this.refused?.writing === true;
    const ask = write
      ? (attempt: AttemptOptions) => this.client.kv.txn(this.writeProbeRequest(), attempt)
      : (attempt: AttemptOptions) => this.client.kv.range(this.probeRequest(), attempt);
    readWithRetry<{ header: IResponseHeader }>(ask, this.callTimeoutMs, write ? 'write' : 'read')
      .then(
        (res) => {
          this.observe(res.header);
          this.settleHealth(undefined, write ? 'write' : 'read');
        },
        (error: unknown) => {
          // Refused, but a call has shown since the probe left that etcd no longer refuses: an answer from before the fix.
          if (error instanceof BackendRefusedError && this.refusalsCleared !== cleared) return;
          this.settleHealth(notReachedByProbe(error), 'nothing');
        },
      )
      .finally(() => {
        this.probing = false;
      });
  }

  /**
   * What a settled call says of etcd. An answer, whatever it was, says that
   * etcd answers. Not getting one may be one member's failure (a write is
   * sent to one member, once), so it starts a probe, which decides.
   * `shown`: what the call's success showed etcd permits this server.
   */
  private answered(error: unknown, shown: Permitted): void {
    if (this.closed) return;
    if (isOutage(error)) this.probe();
    else this.settleHealth(error, shown);
  }

  private settleHealth(error: unknown, shown: Permitted): void {
    if (this.closed) return;
    this.lastAnswerAt = Date.now();
    this.unavailable = isOutage(error) ? error : undefined;
    if (error instanceof BackendRefusedError) this.refused = error;
    // A refused write is over once a write has gone through; a refused read, once a read has.
    else if (this.refused !== undefined && shown === (this.refused.writing ? 'write' : 'read')) {
      this.refused = undefined;
      this.refusalsCleared++;
    }
  }

  protected async _close(): Promise<void> {
    this.closed = true;
    for (const watch of [...this.watches]) watch.end(new StoreClosedError('the store is closed'));
    // Calls accepted before close finish (or fail) before the connections go.
    await Promise.allSettled([...this.inflight]);
    this.client.close();
  }

  /**
   * A Txn: if the key's mod_revision is `expected` (0 = missing; undefined:
   * any) and, with `privateLease`, the key holds that lease, `op`; otherwise
   * read the key, for the error (a revision mismatch, or a private lease
   * that is not the key's). Returns the store revision after the write.
   */
  private async conditional(
    kvKey: string,
    key: Buffer,
    expected: number | undefined,
    op: IRequestOp,
    onSuccess?: (response: IResponseOp) => void,
    privateLease = 0,
  ): Promise<number> {
    const compare: ICompare[] = [];
    if (expected !== undefined) compare.push({ key, target: 'Mod', result: 'Equal', mod_revision: expected });
    if (privateLease !== 0) compare.push({ key, target: 'Lease', result: 'Equal', lease: privateLease });
    const res = await writeOnce(() =>
      this.client.kv.txn({
        compare,
        success: [op],
        failure: [{ request_range: { key, keys_only: true } }],
      }),
    );
    const revision = this.observe(res.header);
    if (!res.succeeded) {
      const current = res.responses[0]?.response_range.kvs[0];
      const modRevision = current === undefined ? 0 : Number(current.mod_revision);
      if (expected !== undefined && modRevision !== expected) throw new RevisionMismatchError(kvKey, expected, modRevision);
      // A lease that is gone is not found; one that is there belongs to another key.
      await this.leases.info(privateLease, false);
      throw new LeasePrivateError(privateLease, kvKey);
    }
    if (onSuccess !== undefined && res.responses[0] !== undefined) onSuccess(res.responses[0]);
    return revision;
  }

  private rangeKeys(key: Buffer, rangeEnd: Buffer, limit: number, revision: number): Promise<IRangeResponse> {
    return this.read((attempt) => this.client.kv.range({ key, range_end: rangeEnd, limit, revision, keys_only: true }, attempt));
  }

  private async read<T extends { header: IResponseHeader }>(call: (attempt: AttemptOptions) => Promise<T>): Promise<T> {
    const res = await readWithRetry(call, this.callTimeoutMs);
    this.observe(res.header);
    return res;
  }

  private observe(header: IResponseHeader): number {
    return this.observeRevision(Number(header.revision));
  }

  private observeRevision(revision: number): number {
    if (revision > this.observedRevision) this.observedRevision = revision;
    return revision;
  }

  private toEntry(key: string, kv: IKeyValue): Entry {
    return toEntry(key, this.keyspace.decodeEntry(kv, key));
  }

  /** A Put for a set, with `lease` (its own, or the private one granted for its ttl). */
  private putRequest(op: Omit<ValidSet, 'expectedRevision'>, lease: number): IPutRequest {
    return { key: this.keyspace.key(op.key), value: Buffer.from(op.valueJson, 'utf8'), lease };
  }

  /**
   * After a write that succeeded: revokes the private leases the keys it
   * replaced or removed held (`prevs`, their entries before it), except
   * `kept`, the one the key holds now. Nothing else can hold them.
   */
  private async releasePrivateLeases(prevs: readonly IKeyValue[], kept: number): Promise<void> {
    const ids = new Set<number>();
    for (const kv of prevs) {
      const id = Number(kv.lease);
      if (id !== kept && isPrivateLease(id)) ids.add(id);
    }
    if (ids.size > 0) await this.revokeUnused([...ids]);
  }

  /**
   * Revokes private leases no write holds, each only once etcd reports no
   * key at all on it (in this prefix or not): etcd's own lease IDs carry the
   * member ID's low 16 bits in bits 48-63, so on a cluster whose member ID
   * ends in 0x0001 a lease of etcdctl or another app has a private lease's
   * ID, and revoking it would delete that app's keys. One not revoked (or
   * that fails) expires at its ttl anyway.
   */
  private async revokeUnused(ids: number[]): Promise<void> {
    await Promise.all(
      ids.map(async (ID) => {
        try {
          const res = await writeOnce(() => this.client.leaseClient.leaseTimeToLive({ ID, keys: true }));
          if (Number(res.TTL) < 0 || res.keys.length > 0) return;
          await writeOnce(() => this.client.leaseClient.leaseRevoke({ ID }));
        } catch {
          // It expires at its ttl.
        }
      }),
    );
  }

  /** etcd's "requested lease not found" (NOT_FOUND) on a write naming `lease` is kv's LeaseNotFoundError. */
  private leaseError(error: unknown, lease: number): unknown {
    if (lease !== 0 && (error instanceof EtcdLeaseInvalidError || error instanceof GRPCNotFoundError)) return new LeaseNotFoundError(lease);
    return error;
  }

  /**
   * A transaction (and an update, which is one): etcd cannot evaluate kv's
   * compares (JSON equality, not bytes) or apply a merge patch itself, so it
   * is optimistic: read every key the compares and updates name in one
   * snapshot, decide here (with the file engine's own compare rules), then
   * write in one etcd Txn guarded by those keys' mod_revisions. If any
   * changed in between, read and decide again after a random pause that
   * grows (jittered exponential backoff), for up to the call deadline, then
   * WriteConflictError (ABORTED, nothing applied). The writes still take one
   * revision, and etcd still orders them. Transactions of this frontend that
   * read the same keys go one at a time (keyQueue), so they never conflict
   * with each other: only writes from other frontends make a try fail.
   * The call deadline (--etcd-timeout-ms, or the caller's own if sooner)
   * counts from before that wait: one still queued at it is never sent
   * (NOT_SENT, nothing applied), and a key with DEFAULT_MAX_PER_KEY writes
   * queued refuses more at once (NOT_SENT).
   *
   * A set with a ttl gets its private lease when a branch first needs it,
   * the same one on every try; leases no write took are revoked, unless the
   * write's outcome is unknown (then they expire at their ttl).
   */
  /** `isTxn`: a Txn call, whose errors name the op (an Update is a transaction of one op, named by its key alone). */
  private transact(op: ValidTxn, expectedRevision: number | undefined, isTxn: boolean): Promise<TxnResult> {
    // The call's time starts here, before its wait in the queue: one that waited past it is never sent.
    const started = Date.now();
    // Not past the caller's own deadline either: it has stopped waiting by then.
    const until = Math.min(started + this.callTimeoutMs, op.deadline ?? Infinity);
    return this.keyQueue.run(readKeys(op), () => this.transactNow(op, expectedRevision, isTxn, started, until), until);
  }

  private async transactNow(
    op: ValidTxn,
    expectedRevision: number | undefined,
    isTxn: boolean,
    started: number,
    until: number,
  ): Promise<TxnResult> {
    const leases = new Map<ValidTxnOp, number>();
    const released: number[] = [];
    const putFor = async (set: Extract<ValidTxnOp, { type: 'set' }>): Promise<IPutRequest> => {
      let lease = set.ttlMs === undefined ? set.lease : leases.get(set);
      if (lease === undefined) {
        lease = (await this.leases.grant(set.ttlMs as number, true)).id;
        leases.set(set, lease);
      }
      return this.putRequest(set, lease);
    };
    const revokeAllBut = (kept: ValidTxnOp[]): Promise<void> =>
      this.revokeUnused([...leases].filter(([set]) => !kept.includes(set)).map(([, id]) => id));
    for (let attempt = 1, bound = TXN_FIRST_PAUSE_MS; ; attempt++, bound = Math.min(bound * 2, TXN_MAX_PAUSE_MS)) {
      let outcome: AppliedTxn | 'conflict';
      try {
        const readUntil = until;
        outcome = await runOptimisticTxn(
          this.client,
          this.keyspace,
          op,
          expectedRevision,
          isTxn,
          this.limits.maxValueBytes,
          readUntil,
          attemptMsOf(this.callTimeoutMs),
          putFor,
          released,
        );
      } catch (error) {
        if (!(error instanceof BackendUnavailableError)) await revokeAllBut([]);
        throw error;
      }
      if (outcome !== 'conflict') {
        const { result, unreadable } = outcome;
        this.observeRevision(result.revision);
        if (leases.size > 0) await revokeAllBut(result.succeeded ? op.success : op.failure);
        if (released.length > 0) await this.revokeUnused(released);
        if (unreadable !== undefined) throw unreadable;
        return result;
      }
      const pause = Math.random() * bound;
      const spent = Date.now() - started;
      if (Date.now() + pause > until) {
        await revokeAllBut([]);
        throw new WriteConflictError(
          `the transaction met concurrent writes to the keys it reads (from other frontends) for ${spent} ms (${attempt} tries, --etcd-timeout-ms ${this.callTimeoutMs}); nothing was applied: try again`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }

  /**
   * Runs an operation counted as in flight, so close() lets it finish; its
   * outcome tells `failure` whether etcd answers. `changeOf` gives the
   * revision of the change a write made (undefined if none), for watches
   * from now that began before it.
   */
  /** track() for a call that only reads keys. */
  private trackRead<T>(run: () => Promise<T>): Promise<T> {
    return this.track(run, undefined, true);
  }

  /**
   * Runs a call, and tells health what its outcome says of etcd. `changeOf`: the revision of the change a write made,
   * if it made one (a write that changed something was permitted). `reads`: the call reads keys (its success shows
   * that etcd lets this server read).
   */
  private track<T>(run: () => Promise<T>, changeOf?: (result: T) => number | undefined, reads = false): Promise<T> {
    const promise = run();
    if (changeOf !== undefined && this.startingWatches.size > 0) {
      const change = promise.then(changeOf, () => undefined);
      for (const starting of this.startingWatches) starting.changes.push(change);
    }
    this.inflight.add(promise);
    promise.then(
      (result) => {
        this.inflight.delete(promise);
        this.answered(undefined, changeOf?.(result) !== undefined ? 'write' : reads ? 'read' : 'nothing');
      },
      (error: unknown) => {
        this.inflight.delete(promise);
        this.answered(error, 'nothing');
      },
    );
    return promise;
  }
}

/** The keys a transaction reads before it writes (its compares and updates, and sets naming a private lease): the keys it queues on. */
function readKeys(op: ValidTxn): string[] {
  const keys = op.compare.map((c) => c.key);
  for (const o of [...op.success, ...op.failure]) {
    if (o.type === 'update' || (o.type === 'set' && isPrivateLease(o.lease))) keys.push(o.key);
  }
  return keys;
}

/** Whether a transaction's op changed anything (a get does not, nor a delete or clear that found nothing). */
function changes(result: TxnResult['results'][number]): boolean {
  switch (result.type) {
    case 'get':
      return false;
    case 'delete':
      return result.deleted;
    case 'clear':
      return result.deletedCount > 0;
    default:
      return true;
  }
}

function lastKey(kvs: IKeyValue[]): Buffer {
  return kvs[kvs.length - 1].key;
}

/**
 * Connects to etcd and checks, before serving, that it answers and that
 * kv's limits fit in what etcd accepts: a write kv allows must never meet
 * etcd's request size limit as a raw etcd error.
 */
export async function openEtcdStore(options: EtcdStoreOptions): Promise<EtcdStore> {
  const limits = {
    maxKeyBytes: options.maxKeyBytes ?? 4096,
    maxValueBytes: options.maxValueBytes ?? 1048576,
    maxTxnOps: options.maxTxnOps ?? DEFAULT_MAX_TXN_OPS,
  };
  const prefix = options.prefix ?? DEFAULT_ETCD_PREFIX;
  const maxRequestBytes = options.maxRequestBytes ?? ETCD_DEFAULT_MAX_REQUEST_BYTES;
  const keyspace = new EtcdKeyspace(prefix, limits.maxKeyBytes);
  // A conditional write names the key three times: the compare, the put, the read on a mismatch.
  const largestWrite = 3 * (keyspace.prefix.length + limits.maxKeyBytes) + limits.maxValueBytes + WRITE_OVERHEAD_BYTES;
  if (largestWrite > maxRequestBytes) {
    throw new InvalidArgumentError(
      `the largest write kv allows (a ${limits.maxKeyBytes}-byte key and a ${limits.maxValueBytes}-byte value, about ${largestWrite} bytes as an etcd request) is over etcd's request limit of ${maxRequestBytes} bytes: lower --max-value-bytes, or raise etcd's --max-request-bytes and pass the same to --etcd-max-request-bytes`,
    );
  }
  const callTimeoutMs = options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
  const client = connectEtcd(options);
  try {
    const probe = await readWithRetry(
      (attempt) => client.kv.range({ ...keyspace.prefixRange(''), count_only: true }, attempt),
      callTimeoutMs,
    );
    const store = new EtcdStore(
      client,
      keyspace,
      limits,
      callTimeoutMs,
      Number(probe.header.revision),
      options.watchProgressMs ?? DEFAULT_WATCH_PROGRESS_MS,
    );
    await store.askWritesAtOpen();
    return store;
  } catch (error) {
    client.close();
    throw notReachedAtStart(error, schemeMayBeWrong(error) ? await schemeMismatch(options.endpoints) : undefined);
  }
}

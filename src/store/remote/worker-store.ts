/**
 * The store a worker process serves from (kv-server --workers N): writes,
 * leases and transactions go to the store owner over the local channel;
 * reads come from the worker's own replica of the owner's index, and
 * watches from its own change feed, both fed by the owner's feed.
 *
 * Reads stay linearizable through a read index (as etcd's ReadIndex): a
 * read first learns the owner's committed revision, asked AFTER the read
 * began, and waits until the replica has applied it. So a read never
 * returns state older than a write acknowledged (through any worker) before
 * it began. One such question goes out per event-loop turn, shared by
 * every read that arrived in that turn.
 */
import net from 'node:net';
import type { Logger } from '../../logger';
import {
  AbstractKeyValueStore,
  type StoreLimits,
  type ValidCall,
  type ValidClear,
  type ValidDelete,
  type ValidList,
  type ValidSet,
  type ValidTxn,
  type ValidUpdate,
  type ValidWatch,
} from '../abstract-key-value-store';
import type { KeyChange } from '../change';
import { BackendUnavailableError, NotSentError, StoreClosedError } from '../errors';
import { ChangeFeed, type ChangeFeedOptions, DEFAULT_PROGRESS_INTERVAL_MS } from '../feed/change-feed';
import { toEntry } from '../file/decide';
import { historyPacker } from '../file/packed-history';
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
  WatchBatch,
} from '../key-value-store';
import type { FrameChannel } from './frame-channel';
import { decodeWatchBatch, workerChannel } from './owner-codec';
import { type OwnerMessage, type SnapshotInfo, type WorkerMessage, fromWireError } from './owner-protocol';
import { ReplicaIndex } from './replica-index';

/** A backup's snapshot must line up the owner's revision with the replica's; under heavy writes it may take a few tries. */
const SNAPSHOT_ATTEMPTS = 50;
/** How often a starting worker tries the owner's socket. */
const OWNER_RETRY_MS = 20;
/** How often a worker makes sure it heard from the owner lately: if it did not, it asks the read index, which a running owner answers at once (a probe). */
const OWNER_PROBE_MS = 1000;
/**
 * How long the owner may leave a question unanswered, while saying nothing
 * else either, before the worker takes it as not answering (stopped, or its
 * event loop stuck): the store's failure then says so, and health is
 * NOT_SERVING until the owner speaks again. A slow fdatasync on the thread
 * pool does not count (the owner's loop answers the probe meanwhile); work
 * that holds the owner's loop longer than this does.
 */
export const OWNER_SILENT_MS = 5000;

export interface WorkerStoreOptions {
  /** The owner's unix socket. */
  socketPath: string;
  limits: StoreLimits;
  feed?: ChangeFeedOptions;
  logger: Logger;
  /** Gives up waiting for the owner to listen (it may still be recovering the data directory). */
  signal?: AbortSignal;
  /** This worker's name ("worker-2"), which the owner's log uses. */
  name?: string;
  /** Called once if the owner goes away while the store is open: nothing can be written or read any more. */
  onOwnerLost?: (error: Error) => void;
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (reason: unknown) => void;
  /** A write the owner may have committed: if the owner is lost before it answers, its outcome is unknown. */
  write?: boolean;
}

/** Calls that change nothing the owner logs: lost with the owner, they changed nothing. */
const READ_CALLS: ReadonlySet<ValidCall['method']> = new Set(['keepAliveLease', 'leaseInfo', 'listLeases']);
const OUTCOME_UNKNOWN = '; the write may or may not have been applied: read the key before writing it again';
/** How long a closing worker waits for the owner to answer the calls still open (see _close). */
const CLOSE_WAIT_MS = 2000;
const NOT_SENT = '; the write was not sent, nothing was applied: try again';

interface Deferred<T> extends Pending {
  promise: Promise<T>;
}

function deferred<T>(): Deferred<T> {
  let resolve: (value: T) => void = () => undefined;
  let reject: (reason: unknown) => void = () => undefined;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve: resolve as (value: unknown) => void, reject };
}

/** Connects to the owner and resolves once the replica holds the owner's state (snapshot and history loaded). */
export async function openWorkerStore(options: WorkerStoreOptions): Promise<WorkerStore> {
  const socket = await connectToOwner(options.socketPath, options.signal);
  const store = new WorkerStore(socket, options);
  await store.ready;
  return store;
}

export class WorkerStore extends AbstractKeyValueStore {
  private readonly channel: FrameChannel<WorkerMessage, OwnerMessage>;
  private readonly replica = new ReplicaIndex();
  private feed: ChangeFeed | undefined;
  /** Packs the feed's history window (as the owner's is packed), reusing the chunks it lets go of. */
  private readonly packer = historyPacker();
  private readonly calls = new Map<number, Pending>();
  private nextId = 1;
  /** The reads of this turn, waiting for the read-index question that goes out with this turn's frame. */
  private readBatch: Deferred<void> | undefined;
  /** Reads waiting for the replica to reach a revision, in the order asked (so in revision order). */
  private readonly revisionWaiters: Array<{ revision: number; resolve: () => void; reject: (reason: unknown) => void }> = [];
  /** Backups waiting for the replica to be exactly at a revision. */
  private readonly freezeWaiters: Array<{ revision: number; done: (frozen: ReturnType<ReplicaIndex['freeze']> | undefined) => void }> = [];
  private boot: { revision: number; keyCount: number; loaded: number } | undefined;
  private readonly starting = deferred<void>();
  private lost: Error | undefined;
  private ownerFailure: Error | undefined;
  private closingSocket = false;
  private drained: Deferred<void> | undefined;
  /** When the owner last sent anything (performance.now()). */
  private lastHeardAt = performance.now();
  /** Since when a question to the owner has waited with nothing heard from it; undefined while none waits. */
  private waitingSince: number | undefined;
  /** The id of the probe waiting for its answer: it is no call, so a close does not wait for it. */
  private probeId: number | undefined;
  private readonly probe: NodeJS.Timeout;
  /** The owner's store's history id, from the bootstrap. */
  private ownerHistoryId: string | undefined;
  /** Watches from now waiting for the read index before they open on the feed: counted as open already. */
  private watchesOpening = 0;

  /** Use openWorkerStore(). */
  constructor(
    private readonly socket: net.Socket,
    private readonly options: WorkerStoreOptions,
  ) {
    super(options.limits);
    this.channel = workerChannel(socket, (messages) => {
      for (const message of messages) this.receive(message);
      this.heardFromOwner();
    });
    this.probe = setInterval(() => this.probeOwner(), OWNER_PROBE_MS).unref();
    this.channel.beforeFlush = () => this.askReadIndex();
    socket.on('error', (err) => options.logger.debug({ err }, 'store owner connection failed'));
    socket.on('close', () => this.ownerGone("the store owner process is gone (or closed this worker's channel)"));
    this.channel.send({ kind: 'bootstrap', name: options.name });
  }

  get ready(): Promise<void> {
    return this.starting.promise;
  }

  get revision(): number {
    return this.replica.revision;
  }

  /** The owner's: a worker serves the owner's history. */
  get historyId(): string | undefined {
    return this.ownerHistoryId;
  }

  get watchProgressMs(): number {
    return this.options.feed?.progressIntervalMs ?? DEFAULT_PROGRESS_INTERVAL_MS;
  }

  /** The owner's store failure (writes refused, reads go on), the loss of the owner, or an owner that does not answer. */
  get failure(): Error | undefined {
    return this.lost ?? this.ownerFailure ?? this.silence();
  }

  private silence(): Error | undefined {
    if (this.waitingSince === undefined) return undefined;
    const ms = performance.now() - this.waitingSince;
    if (ms < OWNER_SILENT_MS) return undefined;
    return new BackendUnavailableError(
      `the store owner has not answered for ${(ms / 1000).toFixed(1)} s (stopped, or too busy to answer): calls wait until it does`,
    );
  }

  private heardFromOwner(): void {
    this.lastHeardAt = performance.now();
    // Questions still open wait from now: the owner runs, so they are queued behind its work, not lost.
    this.waitingSince = this.calls.size > 0 ? this.lastHeardAt : undefined;
  }

  /** Asks the owner something if it has said nothing for a while, so that an owner that stopped answering is noticed (failure). */
  private probeOwner(): void {
    if (this.lost !== undefined || this.probeId !== undefined) return;
    if (performance.now() - this.lastHeardAt < OWNER_PROBE_MS) return;
    const id = this.nextId;
    this.probeId = id;
    this.request({ kind: 'read-index', id: 0 })
      .catch(() => undefined)
      .finally(() => {
        if (this.probeId === id) this.probeId = undefined;
      });
  }

  stats(): StoreStats {
    return { revision: this.replica.revision, watchers: (this.feed?.watcherCount ?? 0) + this.watchesOpening, keys: this.replica.size };
  }

  protected async _get(key: string): Promise<Entry | undefined> {
    await this.readIndex();
    const e = this.replica.get(key);
    return e === undefined ? undefined : toEntry(key, e);
  }

  protected async _listKeys(op: ValidList): Promise<ListResult> {
    await this.readIndex();
    const { keys, more } = this.replica.list(op.prefix, op.startAfter, op.limit);
    return { keys, more, revision: this.replica.revision };
  }

  protected async _list(op: ValidList): Promise<ListEntriesResult> {
    await this.readIndex();
    const { keys, more } = this.replica.list(op.prefix, op.startAfter, op.limit);
    const entries = keys.map((key) => toEntry(key, this.replica.get(key) ?? unreachable(key)));
    return { entries, more, revision: this.replica.revision };
  }

  protected _set(op: ValidSet): Promise<SetResult> {
    return this.forwardWrite<SetResult>({ method: 'set', op }, (result) => result.revision);
  }

  protected _delete(op: ValidDelete): Promise<DeleteResult> {
    return this.forwardWrite<DeleteResult>({ method: 'delete', op }, (result) => result.revision);
  }

  protected _clear(op: ValidClear): Promise<ClearResult> {
    return this.forwardWrite<ClearResult>({ method: 'clear', op }, (result) => result.revision);
  }

  protected _update(op: ValidUpdate): Promise<Entry> {
    return this.forwardWrite<Entry>({ method: 'update', op }, (result) => result.modRevision);
  }

  protected _txn(op: ValidTxn): Promise<TxnResult> {
    return this.forwardWrite<TxnResult>({ method: 'txn', op }, (result) => result.revision);
  }

  protected _grantLease(ttlMs: number): Promise<Lease> {
    return this.forward({ method: 'grantLease', ttlMs });
  }

  protected _keepAliveLease(id: number): Promise<Lease> {
    return this.forward({ method: 'keepAliveLease', id });
  }

  protected _revokeLease(id: number): Promise<ClearResult> {
    return this.forwardWrite<ClearResult>({ method: 'revokeLease', id }, (result) => result.revision);
  }

  protected _leaseInfo(id: number, keys: boolean): Promise<LeaseInfo> {
    return this.forward({ method: 'leaseInfo', id, keys });
  }

  protected _listLeases(after: number, limit: number): Promise<ListLeasesResult> {
    return this.forward({ method: 'listLeases', after, limit });
  }

  /**
   * A watch is opened on the feed only once the replica has caught up with
   * the owner's committed revision, learnt through the read index as a read
   * does. So a watch from now (start revision 0) starts after every change
   * committed before it began, wherever it was written; and a watch that
   * resumes (start revision N) is told at once a revision of at least N - 1
   * when the store has one, as on the owner: from a lagging replica it would
   * hear an older one, which tells a client its store went back (a restore).
   */
  protected _watch(op: ValidWatch): Watch {
    const feed = this.feed;
    if (feed === undefined) throw new StoreClosedError('the store is not open yet');
    const request = { target: op.target, startRevision: op.startRevision, prevEntry: op.prevEntry };
    this.watchesOpening++;
    const ready = this.readIndex().finally(() => this.watchesOpening--);
    return new WatchOpenedLater(ready, () => feed.watch(request));
  }

  /** The owner names a revision and its leases; the replica is frozen when it is exactly at that revision. */
  protected async _snapshot(): Promise<StoreSnapshot> {
    for (let attempt = 0; attempt < SNAPSHOT_ATTEMPTS; attempt++) {
      const info = (await this.request({ kind: 'snapshot-info', id: 0 })) as SnapshotInfo;
      const frozen = await this.freezeAt(info.revision);
      if (frozen === undefined) continue;
      return {
        revision: info.revision,
        keyCount: frozen.size,
        leases: info.leases,
        entries: () => frozen.entries(),
        release: () => undefined,
      };
    }
    throw new BackendUnavailableError(`could not take a consistent snapshot in ${SNAPSHOT_ATTEMPTS} tries while writes go on; try again`);
  }

  protected async _close(): Promise<void> {
    clearInterval(this.probe);
    // A probe is no call to drain: an owner that stopped answering would hold the close for good.
    const probe = this.probeId === undefined ? undefined : this.calls.get(this.probeId);
    if (probe !== undefined) {
      this.calls.delete(this.probeId as number);
      probe.reject(new StoreClosedError('the store is closing'));
    }
    if (this.calls.size > 0) {
      // The calls left are ones the gRPC server has already ended (its grace is over): the owner's answers are awaited
      // a moment, not for good (an owner that stopped answering would hold this worker until the supervisor kills it).
      this.drained = deferred<void>();
      const giveUp = setTimeout(() => this.drained?.resolve(undefined), CLOSE_WAIT_MS);
      await this.drained.promise;
      clearTimeout(giveUp);
      const why = `the store owner did not answer within ${CLOSE_WAIT_MS} ms of this worker's stop`;
      const unknown = new BackendUnavailableError(why + OUTCOME_UNKNOWN);
      for (const pending of this.calls.values()) pending.reject(pending.write === true ? unknown : new StoreClosedError(why));
      this.calls.clear();
    }
    this.feed?.close();
    this.closingSocket = true;
    this.channel.end();
  }

  private forward<T>(call: ValidCall): Promise<T> {
    const write = !READ_CALLS.has(call.method);
    // Reason NOT_SENT: nothing was applied, so a client may send it again (to this server once restarted, or another).
    if (this.lost !== undefined && write) return Promise.reject(new NotSentError(this.lost.message + NOT_SENT));
    return this.request({ kind: 'call', id: 0, call }, write) as Promise<T>;
  }

  /**
   * A write is answered once this worker's replica holds it (the owner
   * publishes before it answers, so this is rarely a wait): a read or a watch
   * on this worker after the answer sees the write, and so does `revision`.
   * If the owner is lost in that wait the write is still answered: the owner
   * committed it (the worker ends, and the caller reads elsewhere).
   */
  private forwardWrite<T>(call: ValidCall, revisionOf: (result: T) => number): Promise<T> {
    // Two promises where the replica holds the write already (nearly always), not six: this runs for every write.
    return this.forward<T>(call).then((result) => {
      const revision = revisionOf(result);
      if (this.replica.revision >= revision) return result;
      return this.waitFor(revision).then(
        () => result,
        (error: unknown) => {
          if (this.lost === undefined) throw error;
          return result;
        },
      );
    });
  }

  /** Sends a message that the owner answers by id (the id is filled in here). */
  private request(message: Exclude<WorkerMessage, { kind: 'bootstrap' }>, write = false): Promise<unknown> {
    if (this.lost !== undefined) return Promise.reject(this.lost);
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      this.waitingSince ??= performance.now();
      this.calls.set(id, { resolve, reject, write });
      // The callers build the message for this one request: it is sent as it is, not copied.
      message.id = id;
      this.channel.send(message);
    });
  }

  private readIndex(): Promise<void> {
    if (this.lost !== undefined) return Promise.reject(this.lost);
    if (this.readBatch === undefined) {
      this.readBatch = deferred<void>();
      this.channel.scheduleFlush();
    }
    return this.readBatch.promise;
  }

  /** Called as this turn's frame is written: the question goes out after every read of the batch began. */
  private askReadIndex(): void {
    const batch = this.readBatch;
    if (batch === undefined) return;
    this.readBatch = undefined;
    this.request({ kind: 'read-index', id: 0 })
      .then((revision) => this.waitFor(revision as number))
      .then(() => batch.resolve(undefined), batch.reject);
  }

  /** Resolves once the replica has applied `revision`. */
  private waitFor(revision: number): Promise<void> {
    if (this.replica.revision >= revision) return Promise.resolve();
    if (this.lost !== undefined) return Promise.reject(this.lost);
    return new Promise((resolve, reject) => this.revisionWaiters.push({ revision, resolve, reject }));
  }

  private freezeAt(revision: number): Promise<ReturnType<ReplicaIndex['freeze']> | undefined> {
    if (this.replica.revision > revision) return Promise.resolve(undefined);
    if (this.replica.revision === revision) return Promise.resolve(this.replica.freeze());
    return new Promise((done) => this.freezeWaiters.push({ revision, done }));
  }

  private receive(message: OwnerMessage): void {
    switch (message.kind) {
      case 'reply':
      case 'fail': {
        const pending = this.calls.get(message.id);
        if (pending === undefined) return;
        this.calls.delete(message.id);
        if (message.kind === 'reply') pending.resolve(message.value);
        else pending.reject(fromWireError(message.error));
        if (this.calls.size === 0) this.drained?.resolve(undefined);
        return;
      }
      case 'bootstrap':
        this.boot = { revision: message.revision, keyCount: message.keyCount, loaded: 0 };
        this.ownerHistoryId = message.historyId;
        this.replica.revision = message.revision;
        this.feed = new ChangeFeed(message.historyFrom - 1, this.options.feed);
        // Packed as the owner's is: a window of objects is old-generation garbage the collector keeps walking (and
        // holds several times the memory), in every worker.
        this.feed.window.packWith(this.packer.pack, this.packer.recycle);
        this.checkStarted();
        return;
      case 'entries':
        this.replica.load(message.entries);
        if (this.boot !== undefined) this.boot.loaded += message.entries.length;
        this.checkStarted();
        return;
      case 'feed':
        this.applyBatch(message.batch);
        this.checkStarted();
        return;
      case 'live-feed':
        this.applyBatch(decodeWatchBatch(message.bytes));
        this.checkStarted();
        return;
      case 'failure':
        this.ownerFailure = message.error === undefined ? undefined : fromWireError(message.error);
        return;
      case 'feed-ended':
        this.ownerGone(`the store owner ended this worker's feed (${fromWireError(message.error).message})`);
        return;
    }
  }

  private checkStarted(): void {
    const boot = this.boot;
    if (boot === undefined || this.feed === undefined) return;
    if (boot.loaded >= boot.keyCount && this.feed.revision >= boot.revision) this.starting.resolve(undefined);
  }

  /**
   * Whole revisions, in order, each once: into the feed's history (the ones
   * up to the bootstrap revision only there: the snapshot has them already)
   * and into the replica. A live batch carries no previous entries: the
   * replica, just before the change, holds them.
   */
  private applyBatch(batch: WatchBatch): void {
    const feed = this.feed as ChangeFeed;
    const events = batch.events;
    let i = 0;
    while (i < events.length) {
      const revision = events[i].revision;
      if (revision <= feed.revision) {
        while (i < events.length && events[i].revision === revision) i++;
        continue;
      }
      const toReplica = revision > this.replica.revision;
      const changes: KeyChange[] = [];
      for (; i < events.length && events[i].revision === revision; i++) {
        const e = events[i];
        const prev = e.prev ?? (toReplica ? this.replica.get(e.key) : undefined);
        if (e.type === 'put') changes.push({ type: 'set', key: e.key, revision, entry: e.entry ?? unreachable(e.key), prev });
        else changes.push({ type: 'delete', key: e.key, revision, prev: prev ?? unreachable(e.key) });
      }
      if (toReplica) {
        for (const change of changes) this.replica.apply(change);
        this.replica.revision = revision;
      }
      feed.publish(changes);
      this.revisionReached();
    }
    if (batch.revision > this.replica.revision) {
      this.replica.revision = batch.revision;
      this.revisionReached();
    }
  }

  private revisionReached(): void {
    const now = this.replica.revision;
    let n = 0;
    while (n < this.revisionWaiters.length && this.revisionWaiters[n].revision <= now) this.revisionWaiters[n++].resolve();
    if (n > 0) this.revisionWaiters.splice(0, n);
    if (this.freezeWaiters.length > 0) {
      for (const waiter of this.freezeWaiters.splice(0)) {
        if (waiter.revision === now) waiter.done(this.replica.freeze());
        else if (waiter.revision < now) waiter.done(undefined);
        else this.freezeWaiters.push(waiter);
      }
    }
  }

  private ownerGone(why: string): void {
    if (this.lost !== undefined || this.closingSocket) return;
    const error = new BackendUnavailableError(why);
    this.lost = error;
    clearInterval(this.probe);
    // A write the owner had not answered may be committed or not: the caller must not take UNAVAILABLE for "not applied".
    const unknown = new BackendUnavailableError(why + OUTCOME_UNKNOWN);
    for (const pending of this.calls.values()) pending.reject(pending.write === true ? unknown : error);
    this.calls.clear();
    this.readBatch?.reject(error);
    this.readBatch = undefined;
    for (const waiter of this.revisionWaiters.splice(0)) waiter.reject(error);
    for (const waiter of this.freezeWaiters.splice(0)) waiter.done(undefined);
    this.feed?.close(error);
    this.starting.reject(error);
    this.drained?.resolve(undefined);
    this.socket.destroy();
    this.options.onOwnerLost?.(error);
  }
}

/** A watch opened on the feed once `ready` resolves; closed before that, it is never opened. */
class WatchOpenedLater implements Watch {
  private watch: Watch | undefined;
  private closed = false;
  private readonly opened: Promise<Watch>;

  constructor(ready: Promise<void>, open: () => Watch) {
    this.opened = ready.then(() => {
      this.watch = open();
      if (this.closed) this.watch.close();
      return this.watch;
    });
    // Its failure (the owner lost) is the first next()'s; a watch closed before that has no next() to tell.
    this.opened.catch(() => undefined);
  }

  async next(): Promise<WatchBatch> {
    if (this.closed) throw new StoreClosedError('the watch was closed');
    return (await this.opened).next();
  }

  close(): void {
    this.closed = true;
    this.watch?.close();
  }
}

/** The owner starts with its workers and listens once its store is open: until then, try again. */
async function connectToOwner(socketPath: string, signal: AbortSignal | undefined): Promise<net.Socket> {
  for (;;) {
    signal?.throwIfAborted();
    try {
      return await new Promise<net.Socket>((resolve, reject) => {
        const socket = net.connect(socketPath);
        socket.once('error', reject);
        socket.once('connect', () => {
          socket.off('error', reject);
          resolve(socket);
        });
      });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ECONNREFUSED') throw error;
      await new Promise((resolve) => setTimeout(resolve, OWNER_RETRY_MS));
    }
  }
}

function unreachable(key: string): never {
  throw new Error(`the owner's feed lacks an entry for key ${JSON.stringify(key)}`);
}

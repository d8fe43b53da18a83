/**
 * One kv watch as one etcd watch, on a gRPC stream of its own. etcd sends
 * the events of whole revisions, in order, with progress responses when
 * the watcher is idle (every --experimental-watch-progress-notify-interval,
 * only once the watcher has been given everything up to that revision);
 * each response becomes one batch. If the stream breaks (a member died, a
 * network cut) the watch is created again on another member from the first
 * revision not yet received, so the consumer sees every change exactly
 * once. etcd's compaction error becomes WatchCompactedError; a cluster that
 * stays unreachable ends the watch with BackendUnavailableError (the kv
 * client resumes by revision, perhaps through another frontend).
 *
 * The oldest revision a watch can start at is etcd's compact revision C
 * plus one, not C: etcd accepts a watch from C itself, but there it no
 * longer has what the watch needs. An etcd without the fix of its issue
 * 18089 (Debian's 3.4.23 among them) drops a delete at C, and every etcd
 * sends the events at C without the prev_kv asked for (revision C - 1 is
 * gone), which clients would take for "the key did not exist". etcd names
 * C only to a watch that starts before C, so each etcd watch starts one
 * revision early (at resumeFrom - 1): etcd refuses it exactly when
 * resumeFrom <= C, and says C. The events of that one revision (sent again
 * at each start, the price of this) are dropped here.
 *
 * A consumer that waits progressMs for a batch gets one with no events,
 * current to the revision it was last given: etcd's own progress comes only
 * every --experimental-watch-progress-notify-interval (10 minutes by
 * default), and not in the interval after one in which it sent the watcher
 * events (the revision before the start, dropped here, included), so a
 * client that waits for a message at least that often (the SDK: twice the
 * interval a stream's first message gives) would take a quiet stream for a
 * broken one, and one resumed right after an event it was given for broken
 * again, every time.
 *
 * A consumer that stops calling next() stops the stream being read, and
 * gRPC flow control holds etcd back: etcd keeps such a watcher aside and
 * catches it up from its own history later, so no watcher is ever dropped
 * for being slow (unlike the file engine's bounded window).
 */
import type { Etcd3, IDuplexStream, IEvent, IKeyValue, IWatchRequest, IWatchResponse } from 'etcd3';
import type { StoredEntry } from '../change';
import { BackendUnavailableError, StoreClosedError, WatchCompactedError } from '../errors';
import type { Watch, WatchBatch, WatchEvent } from '../key-value-store';
import type { ValidWatch } from '../abstract-key-value-store';
import { endStream } from './etcd-connection';
import { fromEtcdError } from './etcd-errors';
import type { EtcdKeyspace } from './etcd-keyspace';

/** Batches held for a consumer before the stream is paused. */
const MAX_QUEUED_BATCHES = 16;

export interface EtcdWatchOptions {
  /** How long the watch may be without a stream before it ends with BackendUnavailableError. */
  unavailableAfterMs: number;
  /**
   * For a watch from now: the revision it starts after (the store reads
   * etcd's current one). Its first batch says so (no events, current to that
   * revision), so that a client that loses the stream before any change can
   * resume from there; the etcd watch starts at the next revision. If it
   * rejects, the watch ends with that error.
   */
  startsAfter?: Promise<number>;
  /** Called once the watch has ended, for whatever reason. */
  onEnd: (watch: EtcdWatch) => void;
  /** How long a consumer waits for a batch before it gets one without events (--watch-progress-ms). */
  progressMs: number;
}

/** etcd3 hands out grpc-js's ClientDuplexStream (a Node Duplex) but types only its gRPC side; kv also pauses it. */
type WatchStream = IDuplexStream<IWatchRequest, IWatchResponse> & {
  pause(): unknown;
  resume(): unknown;
  removeAllListeners(event: string): unknown;
};

export class EtcdWatch implements Watch {
  /** The first revision not yet received. */
  private resumeFrom: number;
  /** The highest revision a batch was current to, so progress never goes back. */
  private reported = 0;
  private readonly queue: WatchBatch[] = [];
  private error: Error | undefined;
  private waiter: { resolve: (batch: WatchBatch) => void; reject: (error: Error) => void } | undefined;
  private stream: WatchStream | undefined;
  private paused = false;
  private retryTimer: NodeJS.Timeout | undefined;
  /** When the watch last lost its stream (or started without one); undefined while connected. */
  private disconnectedSince: number | undefined = Date.now();
  private retryPause = 50;
  /** A stream was lost and the watch goes on from resumeFrom by itself: a compaction then is of its own resume point. */
  private resuming = false;
  /** A batch was handed over or queued (the first says where the watch stands). */
  private delivered = false;
  /** Ends a consumer's wait with a batch without events once it has waited options.progressMs. */
  private progressTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly client: Etcd3,
    private readonly keyspace: EtcdKeyspace,
    private readonly op: ValidWatch,
    private readonly options: EtcdWatchOptions,
  ) {
    this.resumeFrom = op.startRevision;
    // Never current to less than the revision before its start: a member that lags (a follower cut off from its
    // leader) would otherwise say an older revision, which a client that resumes here after another frontend
    // gave it more takes for a store that went back (the SDK's REVISION_WENT_BACK).
    if (op.startRevision > 0) this.reported = op.startRevision - 1;
    if (options.startsAfter === undefined) {
      this.connect();
      return;
    }
    options.startsAfter.then(
      (revision) => {
        if (this.error !== undefined) return;
        this.resumeFrom = revision + 1;
        this.announce(revision);
        this.disconnectedSince = Date.now();
        this.connect();
      },
      (error: unknown) => {
        const mapped = fromEtcdError(error, 'watch');
        this.end(mapped instanceof Error ? mapped : new BackendUnavailableError(`the watch could not find etcd's current revision`));
      },
    );
  }

  next(): Promise<WatchBatch> {
    if (this.waiter !== undefined) return Promise.reject(new Error('next() called again before the previous call settled'));
    const batch = this.queue.shift();
    if (batch !== undefined) {
      if (this.paused && this.queue.length < MAX_QUEUED_BATCHES / 2) {
        this.paused = false;
        this.stream?.resume();
      }
      return Promise.resolve(batch);
    }
    if (this.error !== undefined) return Promise.reject(this.error);
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.armProgress();
    });
  }

  /**
   * After options.progressMs of waiting, the consumer gets a batch current to
   * the revision it was last given: no news, but word that the watch is
   * alive. Not before the watch has said where it stands: a watch from now
   * learns that from etcd first.
   */
  private armProgress(): void {
    this.progressTimer = setTimeout(() => {
      this.progressTimer = undefined;
      if (this.waiter === undefined || this.error !== undefined) return;
      if (this.delivered || this.op.startRevision > 0) this.deliver({ events: [], revision: this.reported });
      else this.armProgress();
    }, this.options.progressMs);
  }

  close(): void {
    this.end(new StoreClosedError('the watch was closed'));
  }

  /** Ends the watch: what is queued is dropped, the pending and every later next() reject with `error`. */
  end(error: Error): void {
    if (this.error !== undefined) return;
    this.error = error;
    this.queue.length = 0;
    clearTimeout(this.retryTimer);
    clearTimeout(this.progressTimer);
    this.dropStream();
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.reject(error);
    this.options.onEnd(this);
  }

  private connect(): void {
    this.client.watchClient.watch().then(
      (duplex) => {
        const stream = duplex as WatchStream;
        if (this.error !== undefined) {
          stream.on('error', () => undefined);
          endStream(stream);
          return;
        }
        this.stream = stream;
        const range =
          'key' in this.op.target
            ? { key: this.keyspace.key(this.op.target.key), rangeEnd: undefined }
            : this.keyspace.prefixRange(this.op.target.prefix);
        stream.on('data', (response: IWatchResponse) => this.receive(stream, response));
        stream.on('error', (error: Error) => this.lost(stream, error));
        stream.on('end', () => this.lost(stream, new Error('etcd ended the watch stream')));
        stream.write({
          create_request: {
            key: range.key,
            range_end: range.rangeEnd,
            // One early, so that etcd refuses a start at its compact revision (see the top of this file); not 0 (= from now).
            start_revision: Math.max(1, this.resumeFrom - 1),
            progress_notify: true,
            prev_kv: this.op.prevEntry,
          },
        });
      },
      (error: unknown) => this.lost(undefined, error),
    );
  }

  private receive(stream: WatchStream, response: IWatchResponse): void {
    if (stream !== this.stream || this.error !== undefined) return;
    if (response.canceled) {
      const compacted = Number(response.compact_revision);
      this.end(
        compacted > 0
          ? new WatchCompactedError(this.resumeFrom, compacted + 1, this.resuming)
          : new BackendUnavailableError(`etcd cancelled the watch${response.cancel_reason ? `: ${response.cancel_reason}` : ''}`),
      );
      return;
    }
    this.disconnectedSince = undefined;
    this.retryPause = 50;
    const headerRevision = Number(response.header.revision);
    if (response.created) {
      // etcd is not yet at the watch's start (a client resuming after the last revision it was given, or from further
      // on): say at once where the watch stands, as the file engine does, not only at etcd's first progress response
      // (--experimental-watch-progress-notify-interval, 10 minutes by default). Nothing at or after the start exists
      // yet, so the events of the revision before it (see the top of this file) are all that may come before it.
      // (A start etcd has reached may have events still to come: etcd 3.4 cannot say when it has sent them all.)
      if (!this.delivered && headerRevision < this.resumeFrom)
        this.deliver({ events: [], revision: Math.max(headerRevision, this.reported) });
      return;
    }
    // The revision before resumeFrom, which the etcd watch starts at only to find a compaction, is not the consumer's.
    const events = response.events.filter((e) => Number(e.kv.mod_revision) >= this.resumeFrom);
    // Only such events: nothing to deliver (nor progress: the header can be ahead while etcd catches the watch up).
    if (events.length === 0 && response.events.length > 0) return;
    let batch: WatchBatch;
    try {
      batch = this.toBatch(events, headerRevision);
    } catch (error) {
      this.end(error as Error);
      return;
    }
    this.resumeFrom = Math.max(this.resumeFrom, batch.revision + 1);
    this.deliver(batch);
  }

  /**
   * A response as a batch. With events, it is current to its last event's
   * revision (etcd's header may name a later one while it still catches the
   * watcher up); without, it is a progress response, current to the header.
   */
  private toBatch(events: IEvent[], headerRevision: number): WatchBatch {
    if (events.length === 0) return { events: [], revision: Math.max(headerRevision, this.reported) };
    const out = events.map((e) => this.toEvent(e));
    return { events: out, revision: out[out.length - 1].revision };
  }

  private toEvent(event: IEvent): WatchEvent {
    const key = this.keyspace.decodeKey(event.kv.key);
    const revision = Number(event.kv.mod_revision);
    const prev = this.op.prevEntry && event.prev_kv ? this.toEntry(event.prev_kv, key) : undefined;
    if (event.type === 'Delete') return { type: 'delete', key, revision, entry: undefined, prev };
    return { type: 'put', key, revision, entry: this.toEntry(event.kv, key), prev };
  }

  private toEntry(kv: IKeyValue, key: string): StoredEntry {
    return this.keyspace.decodeEntry(kv, key).stored;
  }

  /** Queues the first batch of a watch from now: no events, current to `revision` (the one before its start). */
  private announce(revision: number): void {
    this.reported = revision;
    this.deliver({ events: [], revision });
  }

  private deliver(batch: WatchBatch): void {
    this.delivered = true;
    this.reported = Math.max(this.reported, batch.revision);
    const waiter = this.waiter;
    if (waiter !== undefined) {
      this.waiter = undefined;
      clearTimeout(this.progressTimer);
      waiter.resolve(batch);
      return;
    }
    this.queue.push(batch);
    if (!this.paused && this.queue.length >= MAX_QUEUED_BATCHES) {
      this.paused = true;
      this.stream?.pause();
    }
  }

  /** The stream broke (or could not be opened): open another from where this one stopped, unless that has taken too long. */
  private lost(stream: WatchStream | undefined, error: unknown): void {
    if (stream !== this.stream || this.error !== undefined) return;
    this.dropStream();
    this.resuming = true;
    const since = (this.disconnectedSince ??= Date.now());
    if (Date.now() - since > this.options.unavailableAfterMs) {
      const mapped = fromEtcdError(error, 'watch');
      this.end(
        mapped instanceof Error && mapped !== error
          ? mapped
          : new BackendUnavailableError(`the watch lost etcd and could not resume for ${this.options.unavailableAfterMs} ms`),
      );
      return;
    }
    this.retryTimer = setTimeout(() => this.connect(), this.retryPause);
    this.retryPause = Math.min(this.retryPause * 2, 1000);
  }

  private dropStream(): void {
    const stream = this.stream;
    this.stream = undefined;
    this.paused = false;
    if (stream === undefined) return;
    stream.removeAllListeners('data');
    // Errors after cancel (CANCELLED) are expected; keep a listener so they are not thrown.
    stream.removeAllListeners('error');
    stream.on('error', () => undefined);
    endStream(stream);
  }
}

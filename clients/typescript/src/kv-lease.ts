import { type ClientDuplexStream, type Metadata, status } from '@grpc/grpc-js';
import type { KeepAliveRequest, KeepAliveResponse, KeyValueServiceClient } from './gen/kv/v1/kv';
import { connectionChangeOrTimeout } from './connection-change';
import { KvError } from './kv-error';

/** Keeps one lease alive until closed. */
export interface KeepAliveHandle {
  readonly id: number;
  /**
   * Resolves (with why) if the lease is lost: expired, revoked, or not
   * refreshed before its time ran out; at once if the client was closed
   * before keepAlive. Never rejects.
   */
  readonly lost: Promise<KvError>;
  /** Stops refreshing (the lease then expires after its time to live, unless revoked first). */
  close(): void;
}

/** A handle on a lease that could not be kept at all: `lost` has resolved already, with why. */
export function lostHandle(id: number, why: KvError): KeepAliveHandle {
  return { id, lost: Promise.resolve(why), close: () => undefined };
}

/** One lease kept alive, for as long as any of its handles is open. */
interface Kept {
  id: number;
  /** The lease's time to live: given, or learnt from the first answer. */
  ttlMs: number | undefined;
  /** How long to wait for a first answer when the time to live is not known yet. */
  firstAnswerMs: number;
  /** When the lease was last known refreshed (Date.now()). */
  refreshedAt: number;
  timer: NodeJS.Timeout | undefined;
  /** The open handles' reportLost: keepAlive may be called for one lease more than once, each handle closed on its own. */
  handles: Set<(error: KvError) => void>;
  done: boolean;
}

/** How long a broken stream waits before it is reopened, unless its connection changes state first: doubling while no answer comes. */
const REOPEN_BACKOFF_MS = { first: 50, max: 1000 };

/**
 * The leases a client keeps alive, over one KeepAlive stream (as etcd
 * clients do). Each lease is refreshed about three times per time to live,
 * however many handles keep it. A stream that breaks is reopened, and every
 * lease refreshed on it at once, as soon as its connection changes state
 * (a restarted server is being reconnected to) or after a short backoff: a
 * server back within a lease's time to live keeps it. A lease whose refresh
 * has not been answered before its time to live ran out, or that the server
 * says is gone (ttl 0), is reported lost to every handle on it.
 */
export class LeaseKeeper {
  private readonly kept = new Map<number, Kept>();
  private stream: ClientDuplexStream<KeepAliveRequest, KeepAliveResponse> | undefined;
  /** A reopening of the broken stream is waiting. */
  private reopening = false;
  private reopenBackoffMs = REOPEN_BACKOFF_MS.first;

  constructor(
    /** The client to open a KeepAlive stream on (each reopening may pick another server). */
    private readonly client: () => KeyValueServiceClient,
    private readonly metadata: () => Metadata,
  ) {}

  /** `ttlMs`: the lease's time to live, if known (as grantLease returns it); `firstAnswerMs` bounds the wait otherwise. */
  keep(id: number, ttlMs: number | undefined, firstAnswerMs: number): KeepAliveHandle {
    let reportLost: (error: KvError) => void = () => undefined;
    const lost = new Promise<KvError>((resolve) => {
      reportLost = resolve;
    });
    let kept = this.kept.get(id);
    if (kept === undefined) {
      kept = { id, ttlMs, firstAnswerMs, refreshedAt: Date.now(), timer: undefined, handles: new Set([reportLost]), done: false };
      this.kept.set(id, kept);
      this.refresh(kept);
    } else {
      kept.ttlMs ??= ttlMs;
      kept.handles.add(reportLost);
    }
    const lease = kept;
    return { id, lost, close: () => this.release(lease, reportLost) };
  }

  close(): void {
    for (const kept of [...this.kept.values()]) this.forget(kept);
    this.stream?.cancel();
    this.stream = undefined;
  }

  /** One handle closed: the lease is kept while another is open. */
  private release(kept: Kept, reportLost: (error: KvError) => void): void {
    kept.handles.delete(reportLost);
    if (kept.handles.size === 0) this.forget(kept);
  }

  private refresh(kept: Kept): void {
    if (kept.done) return;
    if (kept.timer !== undefined) clearTimeout(kept.timer);
    const ttl = kept.ttlMs;
    if (Date.now() - kept.refreshedAt >= (ttl ?? kept.firstAnswerMs)) {
      const why =
        ttl === undefined
          ? `no server answered a keep-alive of lease ${kept.id} within ${kept.firstAnswerMs} ms`
          : `lease ${kept.id} was not refreshed within its ${ttl} ms and may have expired`;
      return this.lose(kept, new KvError(why, status.UNAVAILABLE, 'UNAVAILABLE'));
    }
    this.openStream().write({ id: kept.id });
    // Before the first answer the time to live is unknown: ask again soon.
    const every = ttl === undefined ? 500 : Math.max(50, Math.floor(ttl / 3));
    kept.timer = setTimeout(() => this.refresh(kept), every);
    kept.timer.unref();
  }

  private openStream(): ClientDuplexStream<KeepAliveRequest, KeepAliveResponse> {
    if (this.stream !== undefined) return this.stream;
    const client = this.client();
    const stream = client.keepAlive(this.metadata());
    stream.on('data', (response: KeepAliveResponse) => {
      this.reopenBackoffMs = REOPEN_BACKOFF_MS.first;
      const kept = this.kept.get(response.id);
      if (kept === undefined) return;
      if (response.ttlMs === 0) {
        this.lose(kept, new KvError(`lease ${kept.id} expired or was revoked`, status.NOT_FOUND, 'LEASE_NOT_FOUND'));
        return;
      }
      kept.ttlMs = response.ttlMs;
      kept.refreshedAt = Date.now();
    });
    const broken = (): void => {
      if (this.stream !== stream) return;
      this.stream = undefined;
      this.reopenSoon(client);
    };
    stream.on('error', broken);
    stream.on('end', broken);
    stream.on('close', broken);
    this.stream = stream;
    return stream;
  }

  /**
   * Refreshes every lease on a new stream once `client`'s connection changes
   * state, or after the backoff (the next refresh would open one too, but
   * up to a third of the time to live later). Leases not answered in time
   * are reported lost by refresh().
   */
  private reopenSoon(client: KeyValueServiceClient): void {
    if (this.reopening || this.kept.size === 0) return;
    this.reopening = true;
    const wait = this.reopenBackoffMs;
    this.reopenBackoffMs = Math.min(REOPEN_BACKOFF_MS.max, wait * 2);
    void connectionChangeOrTimeout([client], wait).then(() => {
      this.reopening = false;
      if (this.stream === undefined) for (const kept of [...this.kept.values()]) this.refresh(kept);
    });
  }

  private lose(kept: Kept, error: KvError): void {
    this.forget(kept);
    for (const reportLost of kept.handles) reportLost(error);
  }

  private forget(kept: Kept): void {
    if (kept.done) return;
    kept.done = true;
    if (kept.timer !== undefined) clearTimeout(kept.timer);
    this.kept.delete(kept.id);
    if (this.kept.size === 0) {
      this.stream?.end();
      this.stream = undefined;
    }
  }
}

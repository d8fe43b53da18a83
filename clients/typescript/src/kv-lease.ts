import { type ClientDuplexStream, type Metadata, status } from '@grpc/grpc-js';
import type { KeepAliveRequest, KeepAliveResponse, KeyValueServiceClient } from './gen/kv/v1/kv';
import { connectionChangeOrTimeout } from './connection-change';
import { KvError } from './kv-error';

/** Keeps one lease alive until closed. */
export interface KeepAliveHandle {
  readonly id: number;
  /**
   * Resolves (with why) if the lease is lost: expired, revoked, or not
   * refreshed before its time ran out (a little before the server would
   * expire it: see LeaseKeeper); at once if the client was closed before
   * keepAlive. Never rejects.
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
  /** When (performance.now()) the lease is reported lost unless a refresh sent before then is answered. */
  lostAt: number;
  refreshTimer: NodeJS.Timeout | undefined;
  lostTimer: NodeJS.Timeout | undefined;
  /** The open handles' reportLost: keepAlive may be called for one lease more than once, each handle closed on its own. */
  handles: Set<(error: KvError) => void>;
  done: boolean;
}

/** One KeepAlive stream, and when each of its unanswered refreshes was sent (performance.now(), oldest first, per lease). */
interface KeepAliveStream {
  call: ClientDuplexStream<KeepAliveRequest, KeepAliveResponse>;
  sentAt: Map<number, number[]>;
}

/** How long a broken stream waits before it is reopened, unless its connection changes state first: doubling while no answer comes. */
const REOPEN_BACKOFF_MS = { first: 50, max: 1000 };

/** The longest delay setTimeout takes (2^31 - 1 ms, about 24.8 days): Node fires a longer one after 1 ms. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * How much sooner than the server could expire a lease it is reported lost:
 * 1% of its time to live, for a client and server whose clocks run at
 * slightly different rates, and a server whose expiry timer fires early
 * relative to ours.
 */
function lossMarginMs(ttlMs: number): number {
  return Math.floor(ttlMs / 100);
}

/**
 * The leases a client keeps alive, over one KeepAlive stream (as etcd
 * clients do). Each lease is refreshed about three times per time to live,
 * however many handles keep it. A stream that breaks is reopened, and every
 * lease refreshed on it at once, as soon as its connection changes state
 * (a restarted server is being reconnected to) or after a short backoff: a
 * server back within a lease's time to live keeps it.
 *
 * A lease is reported lost to every handle on it when the server says it
 * is gone (ttl 0), or when its time to live has run out since the refresh
 * last answered was sent (less lossMarginMs), by a timer of its own. The
 * server restarts a lease's time to live when a refresh reaches it, never
 * before it was sent, so this count never outlasts the server's; counted
 * from the answer's arrival (however late), a lock could still look held
 * after the server deleted its key and another process took it. A lease
 * kept from grantLease's answer counts from when the grant was sent until
 * a refresh is answered.
 */
export class LeaseKeeper {
  private readonly kept = new Map<number, Kept>();
  private stream: KeepAliveStream | undefined;
  /** A reopening of the broken stream is waiting. */
  private reopening = false;
  private reopenBackoffMs = REOPEN_BACKOFF_MS.first;

  constructor(
    /** The client to open a KeepAlive stream on (each reopening may pick another server). */
    private readonly client: () => KeyValueServiceClient,
    private readonly metadata: () => Metadata,
  ) {}

  /**
   * `lease`: its id, and its time to live and when it was granted
   * (performance.now() before the grant was sent) if known; `firstAnswerMs`
   * bounds the wait for a first answer when the time to live is not.
   */
  keep(lease: { id: number; ttlMs?: number; grantSentAt?: number }, firstAnswerMs: number): KeepAliveHandle {
    const { id, ttlMs } = lease;
    let reportLost: (error: KvError) => void = () => undefined;
    const lost = new Promise<KvError>((resolve) => {
      reportLost = resolve;
    });
    const since = lease.grantSentAt ?? performance.now();
    let kept = this.kept.get(id);
    if (kept === undefined) {
      const lostAt = ttlMs === undefined ? since + firstAnswerMs : since + ttlMs - lossMarginMs(ttlMs);
      kept = {
        id,
        ttlMs,
        firstAnswerMs,
        lostAt,
        refreshTimer: undefined,
        lostTimer: undefined,
        handles: new Set([reportLost]),
        done: false,
      };
      this.kept.set(id, kept);
      this.armLostTimer(kept);
      this.refresh(kept);
    } else {
      kept.handles.add(reportLost);
      if (kept.ttlMs === undefined && ttlMs !== undefined) {
        kept.ttlMs = ttlMs;
        this.setLostAt(kept, Math.min(kept.lostAt, since + ttlMs - lossMarginMs(ttlMs)));
      }
    }
    const keptLease = kept;
    return { id, lost, close: () => this.release(keptLease, reportLost) };
  }

  close(): void {
    for (const kept of [...this.kept.values()]) this.forget(kept);
    this.stream?.call.cancel();
    this.stream = undefined;
  }

  /** One handle closed: the lease is kept while another is open. */
  private release(kept: Kept, reportLost: (error: KvError) => void): void {
    kept.handles.delete(reportLost);
    if (kept.handles.size === 0) this.forget(kept);
  }

  private refresh(kept: Kept): void {
    if (kept.done) return;
    if (kept.refreshTimer !== undefined) clearTimeout(kept.refreshTimer);
    const stream = this.openStream();
    const sentAt = stream.sentAt.get(kept.id) ?? [];
    sentAt.push(performance.now());
    stream.sentAt.set(kept.id, sentAt);
    stream.call.write({ id: kept.id });
    // Before the first answer the time to live is unknown: ask again soon.
    const ttl = kept.ttlMs;
    const every = ttl === undefined ? 500 : Math.min(MAX_TIMER_MS, Math.max(50, Math.floor(ttl / 3)));
    kept.refreshTimer = setTimeout(() => this.refresh(kept), every);
    kept.refreshTimer.unref();
  }

  /** A refresh sent at `sentAt` was answered with the lease's time to live. */
  private refreshed(kept: Kept, ttlMs: number, sentAt: number): void {
    const lostAt = sentAt + ttlMs - lossMarginMs(ttlMs);
    // Until the time to live is known, lostAt is only how long to wait for an answer: the answer replaces it.
    const known = kept.ttlMs !== undefined;
    kept.ttlMs = ttlMs;
    this.setLostAt(kept, known ? Math.max(kept.lostAt, lostAt) : lostAt);
  }

  private setLostAt(kept: Kept, lostAt: number): void {
    const sooner = lostAt < kept.lostAt;
    kept.lostAt = lostAt;
    // A later time is found by the timer when it fires (one answer per refresh need not re-arm it).
    if (sooner) this.armLostTimer(kept);
  }

  private armLostTimer(kept: Kept): void {
    if (kept.lostTimer !== undefined) clearTimeout(kept.lostTimer);
    const left = kept.lostAt - performance.now();
    if (left > 0) {
      kept.lostTimer = setTimeout(() => this.armLostTimer(kept), Math.min(MAX_TIMER_MS, Math.ceil(left)));
      kept.lostTimer.unref();
      return;
    }
    kept.lostTimer = undefined;
    const why =
      kept.ttlMs === undefined
        ? `no server answered a keep-alive of lease ${kept.id} within ${kept.firstAnswerMs} ms`
        : `lease ${kept.id} was not refreshed within its ${kept.ttlMs} ms and may have expired`;
    this.lose(kept, new KvError(why, status.UNAVAILABLE, 'UNAVAILABLE'));
  }

  private openStream(): KeepAliveStream {
    if (this.stream !== undefined) return this.stream;
    const client = this.client();
    const call = client.keepAlive(this.metadata());
    const stream: KeepAliveStream = { call, sentAt: new Map() };
    call.on('data', (response: KeepAliveResponse) => {
      this.reopenBackoffMs = REOPEN_BACKOFF_MS.first;
      // The server answers a stream's refreshes in order: this answers the oldest one unanswered.
      const pending = stream.sentAt.get(response.id);
      const sentAt = pending?.shift();
      if (pending?.length === 0) stream.sentAt.delete(response.id);
      const kept = this.kept.get(response.id);
      if (kept === undefined) return;
      if (response.ttlMs === 0) {
        this.lose(kept, new KvError(`lease ${kept.id} expired or was revoked`, status.NOT_FOUND, 'LEASE_NOT_FOUND'));
        return;
      }
      if (sentAt !== undefined) this.refreshed(kept, response.ttlMs, sentAt);
    });
    const broken = (): void => {
      if (this.stream !== stream) return;
      this.stream = undefined;
      this.reopenSoon(client);
    };
    call.on('error', broken);
    call.on('end', broken);
    call.on('close', broken);
    this.stream = stream;
    return stream;
  }

  /**
   * Refreshes every lease on a new stream once `client`'s connection changes
   * state, or after the backoff (the next refresh would open one too, but
   * up to a third of the time to live later). Leases not answered in time
   * are reported lost by their lost timer.
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
    if (kept.refreshTimer !== undefined) clearTimeout(kept.refreshTimer);
    if (kept.lostTimer !== undefined) clearTimeout(kept.lostTimer);
    this.kept.delete(kept.id);
    if (this.kept.size === 0) {
      this.stream?.call.end();
      this.stream = undefined;
    }
  }
}

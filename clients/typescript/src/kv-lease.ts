import { type ClientDuplexStream, connectivityState, type Metadata, status } from '@grpc/grpc-js';
import type { KeepAliveRequest, KeepAliveResponse, KeyValueServiceClient } from './gen/kv/v1/kv';
import { connectionChangeOrTimeout } from './connection-change';
import { KvError } from './kv-error';

/** Keeps one lease alive until closed. */
export interface KeepAliveHandle {
  readonly id: number;
  /**
   * Resolves (with why) if the lease is lost: expired or revoked
   * (LEASE_NOT_FOUND, found at the next refresh: up to a third of the time
   * to live later), refused by the server (its code, reason and message:
   * PERMISSION_DENIED, UNAUTHENTICATED, ...; not retried), or not refreshed
   * before its time ran out (UNAVAILABLE, a little before the server would
   * expire it: see LeaseKeeper); at once if the client was closed before
   * keepAlive. Never rejects.
   */
  readonly lost: Promise<KvError>;
  /** Stops refreshing (the lease then expires after its time to live, unless revoked first). */
  close(): void;
}

/** Options of keepAlive. */
export interface KeepAliveOptions {
  /**
   * Told when the keep-alive stream, once answered, breaks (once per
   * outage, however many tries it takes to reopen), and again when a new
   * stream answers: for a person's "lost the keep-alive stream, still
   * keeping lease N" and "resumed". The lease is kept meanwhile for as long
   * as its time to live allows (then `lost` resolves). Not called once the
   * handle is closed or its lease lost.
   */
  onResume?: (change: KeepAliveResumeChange) => void;
}

/** What KeepAliveOptions.onResume is told. */
export type KeepAliveResumeChange =
  /** The stream broke (why: `reason`); refreshes go on as soon as a server answers. */
  | { state: 'lost'; reason: string }
  /** A new stream answered a refresh. */
  | { state: 'resumed' };

/** A handle's callbacks: told the lease is lost, and (if asked) when the stream breaks and answers again. */
interface HandleCallbacks {
  onResume: ((change: KeepAliveResumeChange) => void) | undefined;
  /** This handle was told 'lost' and not yet 'resumed'. */
  toldLost: boolean;
}

/** A handle on a lease that could not be kept at all: `lost` has resolved already, with why. */
export function lostHandle(id: number, why: KvError): KeepAliveHandle {
  return { id, lost: Promise.resolve(why), close: () => undefined };
}

/** One lease kept alive, for as long as any of its handles is open. */
interface Kept {
  id: number;
  /** The lease's time to live: given, remembered from an earlier answer, or learnt from the first answer. */
  ttlMs: number | undefined;
  /** How long to wait for a first answer when the time to live is not known yet, or may have run out already. */
  firstAnswerMs: number;
  /** When (performance.now()) the lease is reported lost unless a refresh sent before then is answered. */
  lostAt: number;
  /**
   * lostAt counts the lease's time to live (from a send time known to be no
   * later than the server's last refresh); false while it only bounds the
   * wait for an answer (time to live unknown, or by this client's count it
   * may have run out already): the first answer then replaces it.
   */
  counted: boolean;
  refreshTimer: NodeJS.Timeout | undefined;
  lostTimer: NodeJS.Timeout | undefined;
  /** The open handles' reportLost, with their callbacks: keepAlive may be called for one lease more than once, each handle closed on its own. */
  handles: Map<(error: KvError) => void, HandleCallbacks>;
  done: boolean;
}

/** The send time (performance.now()) of a lease's last answered refresh, and the time to live it was answered with. */
interface Answered {
  sentAt: number;
  ttlMs: number;
}

/** One KeepAlive stream, and when each of its unanswered refreshes was sent (performance.now(), oldest first, per lease). */
interface KeepAliveStream {
  call: ClientDuplexStream<KeepAliveRequest, KeepAliveResponse>;
  sentAt: Map<number, number[]>;
  /** The lease ids of its unanswered refreshes in the order sent: the server answers them in that order. */
  unanswered: number[];
  /** Whether the server has answered on it. */
  answered: boolean;
}

/**
 * The codes a broken KeepAlive stream is reopened after: the server or the
 * way to it may be back by the next try (a restart, a network cut, a limit,
 * a transient fault). Any other code is a refusal another try would meet
 * again (UNAUTHENTICATED, PERMISSION_DENIED, INVALID_ARGUMENT,
 * FAILED_PRECONDITION, UNIMPLEMENTED, DATA_LOSS, ...): the keep-alive ends
 * at once with it, rather than repeat it every second until the time to
 * live runs out (each repeat with a dead token would spend the address's
 * budget of failed authentications, which other clients behind it share).
 */
const REOPENED_AFTER: ReadonlySet<status> = new Set([
  status.UNAVAILABLE,
  status.DEADLINE_EXCEEDED,
  status.RESOURCE_EXHAUSTED,
  status.ABORTED,
  status.CANCELLED,
  status.INTERNAL,
  status.UNKNOWN,
]);

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
 * is gone (ttl 0), when the server refuses it (an answer with an error,
 * PERMISSION_DENIED; a server from before such answers ended the stream
 * with it instead: the refused refresh's lease is lost, and the others go
 * on, on a new stream), when the
 * server refuses the client (UNAUTHENTICATED, or any other code not in
 * REOPENED_AFTER: every lease, with the server's code, reason and message),
 * or when its time to live has run out since the refresh
 * last answered was sent (less lossMarginMs), by a timer of its own. The
 * server restarts a lease's time to live when a refresh reaches it, never
 * before it was sent, so this count never outlasts the server's; counted
 * from the answer's arrival (however late), a lock could still look held
 * after the server deleted its key and another process took it. A lease
 * kept from grantLease's answer counts from when the grant was sent until
 * a refresh is answered.
 *
 * The send time of each lease's last answered refresh is remembered
 * across its handles (until it could have run out), so a lease kept again
 * after its handles closed, or from a copy of grantLease's answer, counts
 * from it. A lease kept anew whose count has run out already (or that has
 * none: an id) is refreshed at once and reported lost only if that is not
 * answered within firstAnswerMs: it may have been refreshed by another
 * client, and a refresh that reaches the server in time is answered.
 */
export class LeaseKeeper {
  private readonly kept = new Map<number, Kept>();
  /** Per lease id, its last answered refresh on this client: kept after its handles close, until it could have run out. */
  private readonly answered = new Map<number, Answered>();
  private stream: KeepAliveStream | undefined;
  /** A reopening of the broken stream is waiting. */
  private reopening = false;
  /** A stream that had been answered broke, and no stream has answered since: the handles were told (onResume). */
  private outage = false;
  private reopenBackoffMs = REOPEN_BACKOFF_MS.first;

  constructor(
    /** The client to open a KeepAlive stream on (each reopening may pick another server). */
    private readonly client: () => KeyValueServiceClient,
    private readonly metadata: () => Metadata,
    /**
     * With several servers: a stream whose connection is not up this long
     * after it was opened (a server that accepts connections but does not
     * answer) is given up for the next server, as calls pass such a server
     * over. Undefined with one server: its own lost timers judge it.
     */
    private readonly switchAfterMs?: number,
  ) {}

  /**
   * `lease`: its id, and its time to live and when it was granted
   * (performance.now() before the grant was sent) if known; `firstAnswerMs`
   * bounds the wait for a first answer when the time to live is not.
   */
  keep(
    lease: { id: number; ttlMs?: number; grantSentAt?: number },
    firstAnswerMs: number,
    options: KeepAliveOptions = {},
  ): KeepAliveHandle {
    const { id, ttlMs } = lease;
    let reportLost: (error: KvError) => void = () => undefined;
    const lost = new Promise<KvError>((resolve) => {
      reportLost = resolve;
    });
    const callbacks: HandleCallbacks = { onResume: options.onResume, toldLost: false };
    const now = performance.now();
    this.forgetRunOut(now);
    const answered = this.answered.get(id);
    const known = ttlMs ?? answered?.ttlMs;
    // The later of the grant and the last answered refresh; with neither known, now (which may be later than the server's count).
    const since = Math.max(lease.grantSentAt ?? -Infinity, answered?.sentAt ?? -Infinity);
    const countedLostAt = known === undefined ? undefined : (Number.isFinite(since) ? since : now) + known - lossMarginMs(known);
    // Run out already by this count: the lease may still be alive (refreshed by another client); the answer to a refresh sent now says.
    const counts = countedLostAt !== undefined && countedLostAt > now;
    let kept = this.kept.get(id);
    if (kept === undefined) {
      kept = {
        id,
        ttlMs: known,
        firstAnswerMs,
        lostAt: counts ? countedLostAt : now + firstAnswerMs,
        counted: counts,
        refreshTimer: undefined,
        lostTimer: undefined,
        handles: new Map([[reportLost, callbacks]]),
        done: false,
      };
      this.kept.set(id, kept);
      this.refresh(kept);
      this.armLostTimer(kept);
    } else {
      kept.handles.set(reportLost, callbacks);
      kept.ttlMs ??= known;
      if (!kept.counted && counts) {
        kept.counted = true;
        this.setLostAt(kept, Math.min(kept.lostAt, countedLostAt));
      }
    }
    const keptLease = kept;
    return { id, lost, close: () => this.release(keptLease, reportLost) };
  }

  /** Stops keeping every lease: each open handle's `lost` resolves with `error` (the client is closed), since nothing refreshes it now. */
  close(error: KvError): void {
    for (const kept of [...this.kept.values()]) this.lose(kept, error);
    this.stream?.call.cancel();
    this.stream = undefined;
    this.answered.clear();
  }

  /** Drops the answered refreshes whose time to live has run out: they can no longer put a loss off. */
  private forgetRunOut(now: number): void {
    for (const [id, { sentAt, ttlMs }] of this.answered) if (sentAt + ttlMs <= now) this.answered.delete(id);
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
    stream.unanswered.push(kept.id);
    stream.call.write({ id: kept.id });
    // Before the first answer the time to live is unknown: ask again soon.
    const ttl = kept.ttlMs;
    const every = ttl === undefined ? 500 : Math.min(MAX_TIMER_MS, Math.max(50, Math.floor(ttl / 3)));
    kept.refreshTimer = setTimeout(() => this.refresh(kept), every);
    kept.refreshTimer.unref();
  }

  /** A refresh of lease `id` sent at `sentAt` was answered with its time to live (whether or not a handle still keeps it). */
  private refreshed(id: number, ttlMs: number, sentAt: number): void {
    const last = this.answered.get(id);
    if (last === undefined || last.sentAt < sentAt) this.answered.set(id, { sentAt, ttlMs });
    const kept = this.kept.get(id);
    if (kept === undefined) return;
    const lostAt = sentAt + ttlMs - lossMarginMs(ttlMs);
    // Until counted, lostAt is only how long to wait for an answer: the answer replaces it.
    const counted = kept.counted;
    kept.counted = true;
    kept.ttlMs = ttlMs;
    this.setLostAt(kept, counted ? Math.max(kept.lostAt, lostAt) : lostAt);
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
    const why = !kept.counted
      ? `no server answered a keep-alive of lease ${kept.id} within ${kept.firstAnswerMs} ms`
      : `lease ${kept.id} was not refreshed within its ${kept.ttlMs} ms and may have expired`;
    this.lose(kept, new KvError(why, status.UNAVAILABLE, 'UNAVAILABLE'));
  }

  private openStream(): KeepAliveStream {
    if (this.stream !== undefined) return this.stream;
    const client = this.client();
    const call = client.keepAlive(this.metadata());
    const stream: KeepAliveStream = { call, sentAt: new Map(), unanswered: [], answered: false };
    call.on('data', (response: KeepAliveResponse) => {
      this.reopenBackoffMs = REOPEN_BACKOFF_MS.first;
      stream.answered = true;
      if (this.outage) this.resumed();
      // The server answers a stream's refreshes in order: this answers the oldest one unanswered.
      const pending = stream.sentAt.get(response.id);
      const sentAt = pending?.shift();
      if (pending?.length === 0) stream.sentAt.delete(response.id);
      const at = stream.unanswered.indexOf(response.id);
      if (at >= 0) stream.unanswered.splice(at, 1);
      if (response.ttlMs === 0) {
        this.answered.delete(response.id);
        const kept = this.kept.get(response.id);
        // Refused (PERMISSION_DENIED): not refreshed, and not retried, though the lease may still exist.
        const why =
          response.error === undefined
            ? new KvError(`lease ${response.id} expired or was revoked`, status.NOT_FOUND, 'LEASE_NOT_FOUND')
            : KvError.fromKeepAliveError(response.error);
        if (kept !== undefined) this.lose(kept, why);
        return;
      }
      if (sentAt !== undefined) this.refreshed(response.id, response.ttlMs, sentAt);
    });
    const broken = (): void => {
      if (this.stream !== stream) return;
      this.stream = undefined;
      this.interrupted(stream, 'the server ended the keep-alive stream');
      this.reopenSoon(client);
    };
    // grpc-js emits 'error' before 'end' (which waits for the stream to be read out) and 'close'.
    call.on('error', (error: unknown) => {
      if (this.stream !== stream) return;
      this.stream = undefined;
      const why = KvError.from(error);
      this.refused(stream, why);
      this.interrupted(stream, why.message);
      // Reopened for the leases still kept, if any.
      this.reopenSoon(client);
    });
    call.on('end', broken);
    call.on('close', broken);
    this.stream = stream;
    if (this.switchAfterMs !== undefined) {
      const channel = client.getChannel();
      const timer = setTimeout(() => {
        if (this.stream !== stream || channel.getConnectivityState(false) === connectivityState.READY) return;
        // Given up before any answer: the same refreshes go on a new stream, to the next server in turn.
        this.stream = undefined;
        call.cancel();
        for (const kept of [...this.kept.values()]) this.refresh(kept);
      }, this.switchAfterMs);
      timer.unref();
    }
    return stream;
  }

  /**
   * The server ended `stream` with `error`. Unless another try may succeed
   * (REOPENED_AFTER), the leases it was about are lost with it: for
   * PERMISSION_DENIED the lease of the oldest unanswered refresh (the
   * server answers in order, and stops at the one it refuses; with none
   * unanswered, the role changed under an open stream, and the next refresh
   * of each lease on a new stream finds the one refused), for any other
   * code every lease this client keeps.
   */
  private refused(stream: KeepAliveStream, error: KvError): void {
    if (REOPENED_AFTER.has(error.code)) return;
    if (error.code !== status.PERMISSION_DENIED) {
      for (const kept of [...this.kept.values()]) this.lose(kept, error);
      return;
    }
    const id = stream.unanswered[0];
    const kept = id === undefined ? undefined : this.kept.get(id);
    if (kept !== undefined) this.lose(kept, error);
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

  /** A stream that had been answered broke: the handles still kept are told, once per outage. */
  private interrupted(stream: KeepAliveStream, reason: string): void {
    if (!stream.answered || this.outage || this.kept.size === 0) return;
    this.outage = true;
    for (const [kept, callbacks] of this.handleCallbacks()) {
      if (callbacks.onResume === undefined || kept.done) continue;
      callbacks.toldLost = true;
      callbacks.onResume({ state: 'lost', reason });
    }
  }

  /** A stream answered after an outage: the handles told of it are told it is over. */
  private resumed(): void {
    this.outage = false;
    for (const [kept, callbacks] of this.handleCallbacks()) {
      if (!callbacks.toldLost || kept.done) continue;
      callbacks.toldLost = false;
      callbacks.onResume?.({ state: 'resumed' });
    }
  }

  /** Every handle's callbacks with its lease, listed first (a callback may lose or close leases: look at `done` when calling). */
  private handleCallbacks(): Array<[Kept, HandleCallbacks]> {
    return [...this.kept.values()].flatMap((kept) =>
      [...kept.handles.values()].map((callbacks): [Kept, HandleCallbacks] => [kept, callbacks]),
    );
  }

  private lose(kept: Kept, error: KvError): void {
    this.forget(kept);
    for (const reportLost of kept.handles.keys()) reportLost(error);
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

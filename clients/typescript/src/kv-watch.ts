import { type ClientReadableStream, type Metadata, status } from '@grpc/grpc-js';
import { EventType, type Entry, type KeyValueServiceClient, type WatchResponse } from './gen/kv/v1/kv';
import { connectionChangeOrTimeout } from './connection-change';
import { KvError } from './kv-error';
import { type JsonValue, type KvEntry, toKvEntry } from './kv-entry';
import { assertKeyText } from './key-check';
import { assertOptions, invalidArgument, isBoolean, isFunction, type OptionCheck } from './options-check';
import { attemptCount, TIMER_MS, wholeNumber } from './whole-number-check';

/**
 * What a watch follows and how: one key (`{ key }`) or every key under a
 * prefix (`{ prefix }`, '' = every key), exactly one of the two, plus
 * WatchCommonOptions.
 */
export type WatchOptions = WatchCommonOptions & (WatchKey | WatchPrefix);

/** Watch one key. */
export interface WatchKey {
  key: string;
  prefix?: undefined;
}

/** Watch every key under a prefix ('' = every key). */
export interface WatchPrefix {
  prefix: string;
  key?: undefined;
}

/** The options of a watch of a key or of a prefix alike. */
export interface WatchCommonOptions {
  /** 0 or absent: changes from now on. N: every change with revision >= N, then live ones. */
  startRevision?: number;
  /** Also give each changed key's previous entry (event.prev). */
  prevEntry?: boolean;
  /**
   * A stream that brings no message at all (not even progress) for this long
   * is treated as broken and resumed. Default: twice the progress interval
   * the server gives in a stream's first message (its --watch-progress-ms),
   * plus a second; 10 s until it has said, or if it does not.
   */
  idleTimeoutMs?: number;
  /** Reconnect attempts in a row before the error is thrown (default: no limit). */
  reconnectAttempts?: number;
  /**
   * Attempts to open the watch before the server has answered it once (its
   * first message, which a watch from now gets at once) before the error is
   * thrown (default: no limit, like reconnectAttempts): a watch of a server
   * that cannot be reached fails instead of waiting for it. Once the server
   * has answered, reconnectAttempts applies.
   */
  startAttempts?: number;
  /**
   * How long the watch waits for the server's first answer, all start
   * attempts included, before it throws DEADLINE_EXCEEDED (default: no
   * limit). A server that accepts the connection but never answers (a
   * stopped process, something that does not speak gRPC) would otherwise
   * cost each attempt idleTimeoutMs. Once the server has answered it no
   * longer applies.
   */
  startTimeoutMs?: number;
  /**
   * Told when a watch that had started loses its stream and is about to
   * resume (once per outage, however many attempts it takes), and again
   * when a new stream has answered: for a person's "lost the stream,
   * resuming from revision N" and "resumed". Not called for attempts before
   * the first answer, nor after close().
   */
  onResume?: (change: WatchResumeChange) => void;
}

/** What WatchOptions.onResume is told. */
export type WatchResumeChange =
  /** The stream broke (why: `reason`); the watch resumes from `revision` (the first one it has not given in full). */
  | { state: 'lost'; revision: number; reason: string }
  /** A new stream answered: the watch goes on from `revision`. */
  | { state: 'resumed'; revision: number };

export interface KvWatchEvent<T = JsonValue> {
  type: 'put' | 'delete';
  key: string;
  /** The revision of the change. */
  revision: number;
  /** For a put: the new entry. */
  entry: KvEntry<T> | undefined;
  /** With prevEntry: the key's entry before the change, if it existed. */
  prev: KvEntry<T> | undefined;
}

const WATCH_OPTIONS: Record<keyof WatchCommonOptions | keyof WatchKey, OptionCheck> = {
  key: assertKeyText,
  prefix: assertKeyText,
  startRevision: wholeNumber(),
  prevEntry: isBoolean,
  idleTimeoutMs: wholeNumber(TIMER_MS),
  reconnectAttempts: attemptCount(0),
  startAttempts: attemptCount(1),
  startTimeoutMs: wholeNumber(TIMER_MS),
  onResume: isFunction,
};

const DEFAULT_IDLE_TIMEOUT_MS = 10_000;
/**
 * Added to twice the server's progress interval: the server sends progress
 * up to a quarter of its interval late (it looks every quarter), and a
 * stalled event loop on either side must not pass for a broken stream.
 */
const LEARNT_IDLE_SLACK_MS = 1000;

/** A stream silent for twice the server's progress interval, and a second, is broken (at most what a timer holds). */
function idleAfterProgress(progressIntervalMs: number): number {
  return Math.min(TIMER_MS.max, 2 * progressIntervalMs + LEARNT_IDLE_SLACK_MS);
}
const RECONNECT_BACKOFF_MS = { first: 50, max: 2000 };

/** Where a client keeps its open watches, so that closing it ends them. */
export interface WatchRegistry {
  add(watch: { close(): void }): void;
  delete(watch: { close(): void }): void;
}

/**
 * A watch: an async iterator of events, each change exactly once, in
 * revision order. It resumes by itself, from the last revision seen + 1,
 * after UNAVAILABLE (a server restart, a network cut), RESOURCE_EXHAUSTED
 * with reason WATCH_TOO_SLOW (the server dropped a slow watcher: it does
 * so only once the changes the watcher still needed left its history, so
 * the resumption meets COMPACTED, below) or a
 * stream that went silent (a stopped server); so a consumer sees each
 * change once across reconnects. (A watch from now learns its start from
 * the server's first message, so even a stream lost before any change
 * resumes where it began.) The history the server no longer has is a
 * KvError with reason COMPACTED and `oldestRevision`: read the state again
 * (listPage, page by page: each page is read at its own revision) and
 * watch from the first page's revision + 1. A server whose store has
 * another history than the one the watch followed (WatchResponse.history_id:
 * restored from a backup, whose revisions after the backup's are reused for
 * other changes; or, with --fsync interval or never, one whose machine went
 * down), or whose revision is below one the watch has given already, is a
 * KvError OUT_OF_RANGE with reason REVISION_WENT_BACK, to recover from in
 * the same way. Any other error ends the loop as a KvError.
 * Breaking out of the loop, close(), or closing the client cancels the call.
 * A loop over the same KvWatch after a `break` goes on from the event after
 * the last one given, as a resumption does. One loop at a time: a second
 * loop while one is reading fails with INVALID_ARGUMENT.
 */
export class KvWatch<T = JsonValue> implements AsyncIterable<KvWatchEvent<T>> {
  /** The revision every change up to which has been given, as a whole message said; undefined before the first message. */
  private last: number | undefined;
  /**
   * The revision of the last event given, and how many of its events have
   * been: a loop left with `break` in the middle of a message (or of one
   * transaction's events) resumes at that revision, past those events.
   */
  private lastEvent: { revision: number; given: number } | undefined;
  /**
   * The revision every change up to which has been given, by the events
   * handed out: an event's own revision once it was the last of it (the
   * next event is of a later one, or it ends a message that is not a
   * fragment), else the revision before it.
   */
  private givenThrough = 0;
  /** The id of the store history the watch follows (a stream's first message says it); undefined until a server said one. */
  private followedHistoryId: string | undefined;
  private call: ClientReadableStream<WatchResponse> | undefined;
  private closed = false;
  /** Whether a loop is reading the watch: a second loop at the same time is refused. */
  private reading = false;
  private reconnects = 0;

  constructor(
    /**
     * The stub to open the next stream on (the next server in turn, when
     * there are several, passing over one whose connection does not come up).
     */
    private readonly client: () => KeyValueServiceClient | Promise<KeyValueServiceClient>,
    private readonly options: WatchOptions,
    private readonly metadata: () => Metadata,
    /** The client's open watches: this one is in it while it is being iterated. */
    private readonly registry?: WatchRegistry,
    /** The client's receive limit, for KvError.from. */
    private readonly receiveLimitBytes?: number,
  ) {
    assertOptions(options, 'watch', WATCH_OPTIONS);
    if ((options.key === undefined) === (options.prefix === undefined)) throw invalidArgument('watch needs exactly one of key and prefix');
  }

  /**
   * The revision every change up to which has been given (0 before the
   * first message): that of the last event given, or a later one the server
   * said the watch is current to. A revision some of whose events were
   * given, but not all (a `break` between two events of one transaction),
   * is not counted until the rest have been: so a new watch from
   * `revision + 1` misses nothing, though it gives again the events of that
   * revision given already. A new loop over this same KvWatch gives only
   * the rest.
   */
  get revision(): number {
    return Math.max(this.last ?? 0, this.givenThrough);
  }

  /**
   * The id of the store history whose revisions the watch follows
   * (WatchResponse.history_id), once a server said it; undefined before, and
   * over the etcd engine, which cannot say.
   */
  get historyId(): string | undefined {
    return this.followedHistoryId;
  }

  /** How many times the watch resumed on a new stream. */
  get reconnectCount(): number {
    return this.reconnects;
  }

  close(): void {
    this.closed = true;
    this.call?.cancel();
  }

  /** Where the next stream starts, and how many events of that revision it passes over (given already). */
  private resumePoint(start: number): { from: number; skip: { revision: number; given: number } | undefined } {
    const event = this.lastEvent;
    // A loop left in the middle of a message may not have given all of its last event's revision: start at it, past those given.
    if (event !== undefined && (this.last === undefined || event.revision > this.last)) return { from: event.revision, skip: { ...event } };
    // Before any message, the start asked for (0: from now); after, the revision after the last one given.
    return { from: this.last === undefined ? start : Math.max(start, this.last + 1), skip: undefined };
  }

  /** The error of a watch the server did not answer within startTimeoutMs; `why`: what the last attempt met. */
  private startTimedOut(why: string, cause: unknown): KvError {
    return new KvError(
      `the server did not answer the watch within ${this.options.startTimeoutMs} ms (${why})`,
      status.DEADLINE_EXCEEDED,
      'DEADLINE_EXCEEDED',
      undefined,
      cause,
    );
  }

  /**
   * The error of a watch whose attempts (startAttempts before the server
   * answered once, reconnectAttempts after) ran out on a stream that
   * brought nothing for `silentMs`: the SDK cancelled it, not the caller.
   */
  private silent(answered: boolean, silentMs: number, cause: unknown): KvError {
    const message = answered
      ? `the watch could not resume: nothing came from the server for ${silentMs} ms ` +
        `(reconnectAttempts ${this.options.reconnectAttempts} used up)`
      : `the server did not answer the watch: nothing came from it for ${silentMs} ms (startAttempts ${this.options.startAttempts} used up)`;
    return new KvError(message, status.UNAVAILABLE, 'UNAVAILABLE', undefined, cause);
  }

  /**
   * The error of a stream whose server is at `serverRevision`, below
   * `given`, a revision this watch has given already: its store is not the
   * one the watch followed. Resuming would pass over that server's own
   * changes up to `given` (a start in the future waits for it, as it must).
   */
  private wentBack(serverRevision: number, given: number): KvError {
    return new KvError(
      `the server is at revision ${serverRevision}, before revision ${given} this watch already gave: ` +
        'its store is not the one the watch followed (restored from a backup?); ' +
        "list again and watch from the listing's revision + 1",
      status.OUT_OF_RANGE,
      'REVISION_WENT_BACK',
    );
  }

  /**
   * The error of a stream whose server's store has history `found`, not
   * `followed`, the one this watch followed: its revisions may name other
   * changes (a restore from a backup; with --fsync interval or never, a
   * machine that went down), so resuming by revision could pass over
   * changes even where the revision did not go back.
   */
  private otherHistory(followed: string, found: string): KvError {
    return new KvError(
      `the server's store has another history (id ${found}) than the one this watch followed (id ${followed}): ` +
        'its revisions may name other changes (restored from a backup, or its machine went down with --fsync interval or never); ' +
        "list again and watch from the listing's revision + 1",
      status.OUT_OF_RANGE,
      'REVISION_WENT_BACK',
    );
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<KvWatchEvent<T>, void, undefined> {
    // Two loops would each open a stream and share one resume point: each would miss what the other was given.
    if (this.reading) {
      throw invalidArgument(
        'this watch is being read by another loop: a KvWatch gives its events to one loop at a time; start another watch',
      );
    }
    this.reading = true;
    const start = this.options.startRevision ?? 0;
    let failures = 0;
    // Whether the server has answered the watch once, and whether a loss was told to onResume and the resumption not yet.
    let answered = false;
    let lostTold = false;
    // Until the server says how often it sends progress (a stream's first message), twice its default.
    let idleMs = this.options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    const startDeadline = this.options.startTimeoutMs === undefined ? Infinity : Date.now() + this.options.startTimeoutMs;
    this.registry?.add(this);
    try {
      while (!this.closed) {
        const resume = this.resumePoint(start);
        const from = resume.from;
        let skip = resume.skip;
        // Before the first answer an attempt also ends where the start's time does.
        const idle = new IdleTimer(answered ? idleMs : Math.max(1, Math.min(idleMs, startDeadline - Date.now())));
        let call: ClientReadableStream<WatchResponse>;
        const stub = await this.client();
        if (this.closed) return;
        try {
          call = stub.watch(
            // Fragments: a revision too large for one message (a Clear of many large keys) comes in several.
            {
              key: this.options.key,
              prefix: this.options.prefix,
              startRevision: from,
              prevEntry: this.options.prevEntry ?? false,
              fragment: true,
            },
            this.metadata(),
          );
        } catch (error) {
          // E.g. the client was closed meanwhile.
          if (this.closed) return;
          throw KvError.from(error, this.receiveLimitBytes, 'stream');
        }
        this.call = call;
        idle.start(() => call.cancel());
        let lost = 'the server ended the stream';
        try {
          for await (const message of call as AsyncIterable<WatchResponse>) {
            // The time the consumer takes over the events is not silence of the stream.
            idle.stop();
            // No server message goes back: a lower revision than one given is another store's (a restored backup).
            // A stream's first message names the history its revisions are of: another than the one followed is another store's.
            if (message.historyId !== '') {
              if (this.followedHistoryId !== undefined && message.historyId !== this.followedHistoryId)
                throw this.otherHistory(this.followedHistoryId, message.historyId);
              this.followedHistoryId = message.historyId;
            }
            const given = Math.max(this.last ?? 0, this.lastEvent?.revision ?? 0);
            if (message.revision < given) throw this.wentBack(message.revision, given);
            failures = 0;
            answered = true;
            if (this.options.idleTimeoutMs === undefined && message.progressIntervalMs > 0)
              idleMs = idleAfterProgress(message.progressIntervalMs);
            // startTimeoutMs bounded the wait for this first answer only.
            idle.ms = idleMs;
            if (lostTold) {
              lostTold = false;
              this.options.onResume?.({ state: 'resumed', revision: from });
            }
            const events = message.events;
            for (let i = 0; i < events.length; i++) {
              const event = toEvent<T>(events[i]);
              if (skip !== undefined && event.revision === skip.revision && skip.given > 0) {
                skip.given--;
                continue;
              }
              skip = undefined;
              // Counted before it is handed over: after a `break` the generator does not come back here.
              if (this.lastEvent?.revision === event.revision) this.lastEvent.given++;
              else this.lastEvent = { revision: event.revision, given: 1 };
              // The last of its revision if the next event is of a later one, or if it ends a whole message.
              const next = events[i + 1];
              const endsRevision = next === undefined ? !message.fragment : revisionOf(next) !== event.revision;
              this.givenThrough = Math.max(this.givenThrough, endsRevision ? event.revision : event.revision - 1);
              yield event;
            }
            // Every change up to message.revision has now been given: resume after it. Not after a fragment: more
            // of its revision follows, and a resumption starts at that revision, past the events given (lastEvent).
            if (!message.fragment && (this.last === undefined || message.revision > this.last)) this.last = message.revision;
            idle.touch();
          }
          // The server ended the stream without an error (it should not): resume.
        } catch (error) {
          if (this.closed) return;
          const kvError = KvError.from(error, this.receiveLimitBytes, 'stream');
          // RESOURCE_EXHAUSTED is also a message too large to send or receive: resuming would meet it again.
          const resumable =
            idle.fired ||
            // UNAVAILABLE includes a stream reset without a status (a killed --workers worker): KvError.from says so.
            kvError.code === status.UNAVAILABLE ||
            (kvError.code === status.RESOURCE_EXHAUSTED && kvError.reason === 'WATCH_TOO_SLOW');
          // reconnectAttempts counts the attempts after the first; startAttempts the first included.
          const limit = answered ? (this.options.reconnectAttempts ?? Infinity) : (this.options.startAttempts ?? Infinity) - 1;
          if (!resumable) throw kvError;
          lost = idle.fired ? (answered ? `no message for ${idle.firedAfterMs} ms` : 'nothing came back') : kvError.message;
          if (!answered && Date.now() >= startDeadline) throw this.startTimedOut(lost, error);
          // A stream the idle timer cancelled fails CANCELLED, as if the caller had: say it was silent.
          if (failures >= limit) throw idle.fired ? this.silent(answered, idle.firedAfterMs, error) : kvError;
        } finally {
          idle.stop();
          call.cancel();
        }
        if (this.closed) return;
        if (answered && !lostTold) {
          lostTold = true;
          this.options.onResume?.({ state: 'lost', revision: this.resumePoint(start).from, reason: lost });
        }
        failures++;
        this.reconnects++;
        const backoff = Math.min(RECONNECT_BACKOFF_MS.max, RECONNECT_BACKOFF_MS.first * 2 ** Math.min(failures - 1, 10));
        // Sooner if the connection changes state (a server that was down is back): resumed then, not at the backoff's end.
        await connectionChangeOrTimeout([stub], answered ? backoff : Math.max(0, Math.min(backoff, startDeadline - Date.now())));
        if (!answered && !this.closed && Date.now() >= startDeadline) throw this.startTimedOut(lost, undefined);
      }
    } finally {
      this.reading = false;
      this.call?.cancel();
      this.registry?.delete(this);
    }
  }
}

/** Fires once if touch() is not called for `ms`. */
class IdleTimer {
  fired = false;
  /** The silence it fired after (its `ms` when last touched). */
  firedAfterMs = 0;
  private timer: NodeJS.Timeout | undefined;
  private onIdle: () => void = () => undefined;

  /** How long a silence may last; changed takes effect at the next touch(). */
  constructor(public ms: number) {}

  start(onIdle: () => void): void {
    this.onIdle = onIdle;
    this.touch();
  }

  touch(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    const ms = this.ms;
    this.timer = setTimeout(() => {
      this.fired = true;
      this.firedAfterMs = ms;
      this.onIdle();
    }, ms);
  }

  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
  }
}

/** An event's revision: its entry's mod_revision (a delete's too). */
function revisionOf(event: WatchResponse['events'][number]): number {
  return event.entry?.modRevision ?? 0;
}

function toEvent<T>(event: WatchResponse['events'][number]): KvWatchEvent<T> {
  const entry = event.entry;
  const key = entry?.key ?? '';
  const revision = revisionOf(event);
  const put = event.type === EventType.EVENT_TYPE_PUT;
  return { type: put ? 'put' : 'delete', key, revision, entry: put ? toEntry<T>(entry) : undefined, prev: toEntry<T>(event.prevEntry) };
}

function toEntry<T>(entry: Entry | undefined): KvEntry<T> | undefined {
  return entry === undefined ? undefined : toKvEntry<T>(entry);
}

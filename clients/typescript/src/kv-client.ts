import {
  connectivityState,
  credentials as grpcCredentials,
  Metadata,
  status,
  type ChannelCredentials,
  type ChannelOptions,
  type ServiceError,
} from '@grpc/grpc-js';
import { type BackupDestination, writeBackupFile } from './backup/write-backup-file';
import type { BackupProgress, BackupSummary } from './backup/backup-file';
import { HealthCheckResponse_ServingStatus, HealthClient, healthCheckResponse_ServingStatusToJSON } from './gen/health/v1/health';
import type { KeyValueServiceClient } from './gen/kv/v1/kv';
import { type JsonCompatible, type JsonValue, type KvEntry, toKvEntry } from './kv-entry';
import { KvError, withNote } from './kv-error';
import { type KeepAliveHandle, type KeepAliveOptions, LeaseKeeper, lostHandle } from './kv-lease';
import { connectionChangeOrTimeout } from './connection-change';
import { createServiceClient, rawBackupStream } from './kv-service-client';
import { TxnBuilder } from './kv-txn';
import { KvWatch, type WatchOptions } from './kv-watch';
import { assertJsonValue } from './json-value-check';
import { assertKeyText } from './key-check';
import { isLoopbackAddress } from './wire/loopback';
import {
  assertOptions,
  describeArgument,
  invalidArgument,
  isAbortSignal,
  isAnyObject,
  isBoolean,
  isFunction,
  isObject,
  isString,
  type OptionCheck,
} from './options-check';
import { assertWholeNumber, attemptCount, INT32, LEASE_ID, TIME_TO_LIVE, TIMER_MS, wholeNumber } from './whole-number-check';

export interface RetryOptions {
  /** Attempts in all, the first included (default: no limit but the call's deadline; 1 disables retries). */
  attempts?: number;
  /**
   * Backoff before the second attempt, doubled each time (default 50 ms); a
   * wait ends early when a connection changes state (say, comes back).
   */
  initialBackoffMs?: number;
  /** The longest backoff between attempts (default 1000 ms). */
  maxBackoffMs?: number;
}

export interface KvClientOptions {
  /**
   * Channel credentials; default plaintext (insecure), which only a loopback
   * address takes unless `insecure` is true. For TLS:
   * `credentials.createSsl(rootCert)` from @grpc/grpc-js.
   */
  credentials?: ChannelCredentials;
  /**
   * Allow plaintext to an address that is not loopback (localhost, ::1,
   * 127.0.0.0/8, a unix socket): without TLS credentials the client
   * otherwise refuses one when it is made, so that nothing (keys, values,
   * a token) crosses a network unencrypted by accident. Like kvctl's
   * --insecure and kv-server's own.
   */
  insecure?: boolean;
  /** Deadline of each call unless the call says otherwise (default 10 s); retries happen within it. */
  deadlineMs?: number;
  /**
   * With several servers: how long a call waits for its server's connection
   * to come up before passing that server over for the next one (default
   * 2000 ms). A server that accepts connections but does not answer (frozen,
   * overloaded, not a gRPC server) would otherwise hold every call sent its
   * way until the call's deadline. Nothing is sent before the connection is
   * up, so a write passes on too. A server whose connection is already up is
   * not timed: a call it does not answer waits for its deadline. With one
   * server, a call waits for the connection until its deadline.
   */
  connectTimeoutMs?: number;
  /**
   * Retries on UNAVAILABLE for reads (get, keys, entries, listKeysPage,
   * listPage, leaseInfo, health), until the call's deadline. Writes are
   * retried only when the server says it sent nothing on (reason NOT_SENT:
   * the etcd cluster behind it could not be reached): otherwise a write that
   * failed or timed out may have happened, and repeating a conditional one
   * could report a conflict with itself. (With several servers, a write
   * whose server could not be connected to, so that nothing was sent, goes
   * to the next one: that is not a retry.)
   */
  retry?: RetryOptions;
  /**
   * The largest answer the client reads, in bytes (default 64 MiB): a List
   * page, a Txn's results, a Watch message. A larger one fails with reason
   * RESPONSE_TOO_LARGE (the call was carried out; a write may have been
   * applied). A 1 MiB JSON value can be several MiB on the wire.
   */
  maxReceiveMessageBytes?: number;
  /** Raw grpc-js channel options. */
  channelOptions?: ChannelOptions;
  /**
   * A bearer token sent as `authorization: Bearer <token>` with every call.
   * Without TLS credentials it travels in the clear: to a loopback address,
   * or with `insecure: true`.
   */
  token?: string;
}

/** What grpc.health.v1 says of the kv service: SERVING only once the store is open and until shutdown begins. */
export type ServingStatus = 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN' | 'UNKNOWN';

export interface CallOptions {
  /** Overrides the client's deadlineMs for this call. */
  deadlineMs?: number;
}

export interface WriteOptions extends CallOptions {
  /** Write only if the key's mod_revision is exactly this (0: only if the key does not exist). */
  expectedRevision?: number;
}

export interface SetOptions extends WriteOptions {
  /** Delete the key after this many ms unless it is set again (a private lease; Redis SET ... PX). */
  ttlMs?: number;
  /** Attach the key to this lease (from grantLease): it goes when the lease expires or is revoked. */
  lease?: number;
}

export interface UpdateOptions extends WriteOptions {
  /** Merge into {} if the key does not exist, instead of failing with NOT_FOUND. */
  createIfMissing?: boolean;
}

export interface BackupOptions {
  /** Called as messages arrive: keys and bytes so far, and the key count once the header came. */
  onProgress?: (progress: BackupProgress) => void;
  /** A deadline for the whole backup (default: none; a dead server is still noticed by keep-alive pings). */
  deadlineMs?: number;
  /**
   * Stops the backup when aborted, at once, even while the server sends
   * nothing: the call is cancelled, an unfinished file removed (an older one
   * at the path kept), and backup rejects with a KvError CANCELLED.
   */
  signal?: AbortSignal;
}

export interface LeaseInfo {
  id: number;
  /** The time to live it was granted. */
  ttlMs: number;
  /** Milliseconds left before it expires. */
  remainingMs: number;
  /** Its keys, when asked for ({ keys: true }); left out otherwise, so that none asked for is not read as none attached. */
  keys?: string[];
}

/** A live lease, as ListLeases reports it. */
export interface LeaseStatus {
  id: number;
  /** The time to live it was granted. */
  ttlMs: number;
  /** Milliseconds left before it expires. */
  remainingMs: number;
  /** How many keys are attached to it. */
  keyCount: number;
  /** A key's private lease, made by a set with ttlMs. */
  private: boolean;
}

/** The options of every call, and those of each kind of call on top, as assertOptions checks them. */
const CALL_OPTIONS = { deadlineMs: wholeNumber(TIMER_MS) };
const WRITE_OPTIONS = { ...CALL_OPTIONS, expectedRevision: wholeNumber() };
const SET_OPTIONS = { ...WRITE_OPTIONS, ttlMs: wholeNumber(TIME_TO_LIVE), lease: wholeNumber() };
const UPDATE_OPTIONS = { ...WRITE_OPTIONS, createIfMissing: isBoolean };
const CLEAR_OPTIONS = { prefix: assertKeyText, ...CALL_OPTIONS };
const PAGE_REQUEST = { prefix: assertKeyText, pageSize: wholeNumber(INT32), pageToken: isString };
const LIST_OPTIONS = { prefix: assertKeyText, pageSize: wholeNumber(INT32), ...CALL_OPTIONS };
const LEASE_PAGE_REQUEST = { pageSize: wholeNumber(INT32), pageToken: isString };
const LEASES_OPTIONS = { pageSize: wholeNumber(INT32), ...CALL_OPTIONS };
const LEASE_INFO_OPTIONS = { keys: isBoolean, ...CALL_OPTIONS };
const KEEP_ALIVE_OPTIONS = { onResume: isFunction };
const BACKUP_OPTIONS = { onProgress: isFunction, deadlineMs: wholeNumber(TIMER_MS), signal: isAbortSignal };
const RETRY_OPTIONS: Record<keyof RetryOptions, OptionCheck> = {
  attempts: attemptCount(1),
  initialBackoffMs: wholeNumber(TIMER_MS),
  maxBackoffMs: wholeNumber(TIMER_MS),
};
const CLIENT_OPTIONS: Record<keyof KvClientOptions, OptionCheck> = {
  credentials: (value, name) => {
    if (!isObject(value) || typeof (value as Partial<ChannelCredentials>)._isSecure !== 'function') {
      throw invalidArgument(
        `${name} must be channel credentials (credentials.createSsl(...) from @grpc/grpc-js), got ${describeArgument(value)}`,
      );
    }
  },
  insecure: isBoolean,
  deadlineMs: wholeNumber(TIMER_MS),
  connectTimeoutMs: wholeNumber(TIMER_MS),
  retry: (value) => assertOptions(value, 'retry', RETRY_OPTIONS, 'retry'),
  maxReceiveMessageBytes: (value, name) => assertWholeNumber(value, name, { min: 1, max: MAX_RECEIVE_BYTES }),
  channelOptions: isAnyObject,
  token: (value, name) => {
    isString(value, name);
    if (!/^[\x21-\x7e]+$/.test(value as string)) {
      throw invalidArgument(`${name} must be non-empty printable ASCII without spaces (it travels in an HTTP/2 header)`);
    }
  },
};

const DEFAULT_RECEIVE_BYTES = 64 * 1024 * 1024;
/** grpc-js reads a message into one Buffer, and a gRPC frame's length is 32 bits. */
const MAX_RECEIVE_BYTES = 2 ** 31 - 1;

type Unary<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: { deadline: Date },
  callback: (error: ServiceError | null, response: Res) => void,
) => unknown;

/** One server's stubs (both on one channel). */
interface Server {
  address: string;
  kv: KeyValueServiceClient;
  health: HealthClient;
}

/** Which stub method a call uses, and on which stub, once its server is picked. */
type MethodOf<Req, Res> = (server: Server) => [object, Unary<Req, Res>];

/**
 * A small typed facade over the generated kv.v1 client.
 *
 * ```ts
 * const kv = new KvClient('127.0.0.1:50051');
 * const revision = await kv.set('user/1', { name: 'Ada' });
 * const entry = await kv.get<{ name: string }>('user/1');
 * for await (const key of kv.keys({ prefix: 'user/' })) console.log(key);
 * kv.close();
 * ```
 */
export class KvClient {
  private readonly servers: Server[];
  /** Round-robin position: the server the next call starts at. */
  private turn = 0;
  private readonly authorization: string | undefined;
  private readonly deadlineMs: number;
  private readonly connectTimeoutMs: number;
  private readonly attempts: number;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;
  private leaseKeeper: LeaseKeeper | undefined;
  /** When each lease grantLease returned was asked for (performance.now()), for keepAlive. */
  private readonly grantSentAt = new WeakMap<object, number>();
  /** Set by close(): every call afterwards fails with clientClosed(). */
  private closed = false;
  /** The watches being iterated: close() ends them. */
  private readonly watches = new Set<{ close(): void }>();
  /** The largest answer grpc-js reads, so that KvError.from can tell an answer over it from a refused request. */
  private readonly receiveLimitBytes: number;

  /**
   * `address` is one server (host:port) or several frontends of one kv
   * deployment: calls go to them in turn, a read that meets UNAVAILABLE is
   * retried on the next one, and a write goes to one that is not known to
   * be down but is never retried (it may have happened); a call of either
   * kind whose server could not be connected to (refused, unreachable: the
   * request never left) is sent to the next one.
   */
  constructor(address: string | readonly string[], options: KvClientOptions = {}) {
    const addresses = serverAddresses(address);
    assertOptions(options, 'KvClient', CLIENT_OPTIONS);
    // As kvctl and kv-server do: plaintext (and a token in it) stays on this machine unless asked for.
    if (options.credentials?._isSecure() !== true && options.insecure !== true) {
      const remote = addresses.find((a) => !isLoopbackAddress(a));
      if (remote !== undefined) {
        throw invalidArgument(
          `${remote} is not a loopback address: give TLS credentials (credentials: credentials.createSsl(rootCert)), ` +
            `or insecure: true to send in plaintext${options.token === undefined ? '' : ', the token included'}`,
        );
      }
    }
    const channelOptions: ChannelOptions = {
      // A 1 MiB JSON value can be several MiB as a google.protobuf.Value; grpc-js would refuse it at 4 MiB.
      'grpc.max_receive_message_length': options.maxReceiveMessageBytes ?? DEFAULT_RECEIVE_BYTES,
      // Pings find a dead server or a cut network under a long-lived watch (no call is needed for that when idle).
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
      // A server restarting for a second is back before grpc-js's default first reconnect (1 s, then up to 120 s
      // apart): reads retried until their deadline and keep-alives would wait on it.
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 2_000,
      ...options.channelOptions,
    };
    this.receiveLimitBytes = Number(channelOptions['grpc.max_receive_message_length']);
    this.servers = addresses.map((a) => {
      const kv = createServiceClient(a, options.credentials ?? grpcCredentials.createInsecure(), channelOptions);
      const health = new HealthClient(a, grpcCredentials.createInsecure(), { channelOverride: kv.getChannel() });
      return { address: a, kv, health };
    });
    // Per-call metadata rather than call credentials: grpc-js refuses to combine those with an insecure channel, and a token on
    // loopback is fine (elsewhere, without TLS, only with insecure: true: see above).
    this.authorization = options.token === undefined ? undefined : `Bearer ${options.token}`;
    this.deadlineMs = options.deadlineMs ?? 10_000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 2_000;
    this.attempts = Math.max(1, options.retry?.attempts ?? Number.POSITIVE_INFINITY);
    this.initialBackoffMs = options.retry?.initialBackoffMs ?? 50;
    this.maxBackoffMs = options.retry?.maxBackoffMs ?? 1000;
  }

  /** The entry under key, or undefined if there is none. T may be any type, interfaces included; it is not checked. */
  async get<T = JsonValue>(key: string, options: CallOptions = {}): Promise<KvEntry<T> | undefined> {
    assertKeyText(key, 'key');
    assertOptions(options, 'get', CALL_OPTIONS);
    try {
      const { entry } = await this.read((s) => [s.kv, s.kv.get], { key }, options);
      if (entry === undefined) throw new KvError('server sent no entry', status.INTERNAL, 'INTERNAL');
      return toKvEntry<T>(entry);
    } catch (error) {
      if (error instanceof KvError && error.reason === 'NOT_FOUND') return undefined;
      throw error;
    }
  }

  /**
   * Stores value under key; returns the new revision. Throws KvError
   * REVISION_MISMATCH on a failed compare. With ttlMs the key expires by
   * itself; with lease it goes with the lease; setting it again without
   * either makes it permanent.
   */
  async set<T = JsonValue>(key: string, value: T & JsonCompatible<T>, options: SetOptions = {}): Promise<number> {
    assertKeyText(key, 'key');
    assertJsonValue(value, 'value');
    assertOptions(options, 'set', SET_OPTIONS);
    const { revision } = await this.write(
      (s) => [s.kv, s.kv.set],
      { key, value, expectedRevision: options.expectedRevision, lease: options.lease ?? 0, ttlMs: options.ttlMs ?? 0 },
      options,
    );
    return revision;
  }

  /**
   * Merges an RFC 7396 JSON merge patch into the key's value on the server,
   * atomically (concurrent updates of different fields all land); returns
   * the new entry. NOT_FOUND if the key is missing, unless createIfMissing.
   * T is the entry's value type, P the patch's (checked as JSON like set's;
   * give both to type a patch of an interface type with an explicit T).
   */
  async update<T = JsonValue, P = JsonValue>(key: string, patch: P & JsonCompatible<P>, options: UpdateOptions = {}): Promise<KvEntry<T>> {
    assertKeyText(key, 'key');
    assertJsonValue(patch, 'patch');
    assertOptions(options, 'update', UPDATE_OPTIONS);
    const { entry } = await this.write(
      (s) => [s.kv, s.kv.update],
      { key, patch, expectedRevision: options.expectedRevision, createIfMissing: options.createIfMissing ?? false },
      options,
    );
    if (entry === undefined) throw new KvError('server sent no entry', status.INTERNAL, 'INTERNAL');
    return toKvEntry<T>(entry);
  }

  /** A transaction: `kv.txn().if(...compares).then(...ops).else(...ops).commit()` (see Compare and Op). Sent once, like a write. */
  txn(options: CallOptions = {}): TxnBuilder {
    assertOptions(options, 'txn', CALL_OPTIONS);
    return new TxnBuilder((request) => this.write((s) => [s.kv, s.kv.txn], request, options));
  }

  /** A lease of ttlMs: keys set with `{ lease: id }` go when it expires or is revoked. */
  async grantLease(ttlMs: number, options: CallOptions = {}): Promise<{ id: number; ttlMs: number }> {
    assertWholeNumber(ttlMs, 'ttlMs', TIME_TO_LIVE);
    assertOptions(options, 'grantLease', CALL_OPTIONS);
    // Before it is sent: the server starts the time to live no sooner (keepAlive counts from here until a refresh is answered).
    const sentAt = performance.now();
    const granted = await this.write((s) => [s.kv, s.kv.grantLease], { ttlMs }, options);
    this.grantSentAt.set(granted, sentAt);
    return granted;
  }

  /**
   * Keeps a lease alive until the handle is closed: refreshes it over one
   * KeepAlive stream shared by all the client's leases, about three times
   * per time to live. `handle.lost` resolves if the lease is lost anyway
   * (it expired, was revoked, or no refresh was answered in time: then
   * a little before the server could expire it, counting from when the
   * last answered refresh was sent). Pass what grantLease returned, so the
   * handle knows the time to live, and when the lease was granted, from the
   * start; given only an id it learns the time to live from the first
   * answer (waiting at most the client's deadline for one).
   */
  keepAlive(lease: number | { id: number; ttlMs: number }, options: KeepAliveOptions = {}): KeepAliveHandle {
    if (typeof lease !== 'number' && !isObject(lease)) {
      throw invalidArgument(`keepAlive takes a lease id or what grantLease returned ({ id, ttlMs }), got ${describeArgument(lease)}`);
    }
    if (typeof lease === 'number') assertWholeNumber(lease, 'lease id', LEASE_ID);
    else {
      assertWholeNumber(lease.id, 'lease id', LEASE_ID);
      assertWholeNumber(lease.ttlMs, 'ttlMs', TIME_TO_LIVE);
    }
    assertOptions(options, 'keepAlive', KEEP_ALIVE_OPTIONS);
    if (this.closed) return lostHandle(typeof lease === 'number' ? lease : lease.id, clientClosed());
    // A broken stream is reopened on the next server in turn.
    this.leaseKeeper ??= new LeaseKeeper(
      () => this.pick().kv,
      () => this.metadata(),
      this.servers.length > 1 ? this.connectTimeoutMs : undefined,
    );
    if (typeof lease === 'number') return this.leaseKeeper.keep({ id: lease }, this.deadlineMs, options);
    return this.leaseKeeper.keep({ id: lease.id, ttlMs: lease.ttlMs, grantSentAt: this.grantSentAt.get(lease) }, this.deadlineMs, options);
  }

  /** Deletes the lease and all its keys at once; returns how many keys went. */
  async revokeLease(id: number, options: CallOptions = {}): Promise<number> {
    assertWholeNumber(id, 'lease id', LEASE_ID);
    assertOptions(options, 'revokeLease', CALL_OPTIONS);
    const { deletedCount } = await this.write((s) => [s.kv, s.kv.revokeLease], { id }, options);
    return deletedCount;
  }

  /** A lease's time to live, and its keys if asked for; undefined if there is no such lease. */
  leaseInfo(id: number, options: { keys: true } & CallOptions): Promise<(LeaseInfo & { keys: string[] }) | undefined>;
  leaseInfo(id: number, options?: { keys?: boolean } & CallOptions): Promise<LeaseInfo | undefined>;
  async leaseInfo(id: number, options: { keys?: boolean } & CallOptions = {}): Promise<LeaseInfo | undefined> {
    assertWholeNumber(id, 'lease id', LEASE_ID);
    assertOptions(options, 'leaseInfo', LEASE_INFO_OPTIONS);
    try {
      const info = await this.read((s) => [s.kv, s.kv.leaseInfo], { id, keys: options.keys ?? false }, options);
      const found: LeaseInfo = { id: info.id, ttlMs: info.grantedTtlMs, remainingMs: info.remainingTtlMs };
      if (options.keys === true) found.keys = info.keys;
      return found;
    } catch (error) {
      if (error instanceof KvError && error.reason === 'LEASE_NOT_FOUND') return undefined;
      throw error;
    }
  }

  /**
   * One page of the live leases in id order (the ListLeases RPC; the file
   * engine only, and with an auth file it needs admin on every key).
   */
  async listLeasesPage(
    request: { pageSize?: number; pageToken?: string } = {},
    options: CallOptions = {},
  ): Promise<{ leases: LeaseStatus[]; nextPageToken: string }> {
    assertOptions(request, 'listLeasesPage', LEASE_PAGE_REQUEST, 'listLeasesPage request');
    assertOptions(options, 'listLeasesPage', CALL_OPTIONS);
    const page = await this.read(
      (s) => [s.kv, s.kv.listLeases],
      { pageSize: request.pageSize ?? 0, pageToken: request.pageToken ?? '' },
      options,
    );
    return {
      leases: page.leases.map((l) => ({
        id: l.id,
        ttlMs: l.grantedTtlMs,
        remainingMs: l.remainingTtlMs,
        keyCount: l.keyCount,
        private: l.private,
      })),
      nextPageToken: page.nextPageToken,
    };
  }

  /** Every live lease in id order, fetched a page at a time. */
  async *leases(options: { pageSize?: number } & CallOptions = {}): AsyncGenerator<LeaseStatus, void, undefined> {
    assertOptions(options, 'leases', LEASES_OPTIONS);
    let pageToken = '';
    do {
      const page = await this.listLeasesPage({ pageSize: options.pageSize, pageToken }, { deadlineMs: options.deadlineMs });
      yield* page.leases;
      pageToken = page.nextPageToken;
    } while (pageToken !== '');
  }

  /** Removes key; false if it did not exist. */
  async delete(key: string, options: WriteOptions = {}): Promise<boolean> {
    assertKeyText(key, 'key');
    assertOptions(options, 'delete', WRITE_OPTIONS);
    const { deleted } = await this.write((s) => [s.kv, s.kv.delete], { key, expectedRevision: options.expectedRevision }, options);
    return deleted;
  }

  /**
   * Removes every key under prefix atomically; returns how many. Every key
   * in the store: `clear()` with no argument, `clear({})` or
   * `clear({ prefix: '' })`, and nothing else: what would otherwise read as
   * no prefix by mistake (a string, undefined, a prefix that is undefined
   * or null, a misspelt option) is refused before anything is sent; the
   * types refuse an argument that may be undefined as well.
   */
  clear(): Promise<number>;
  clear(options: { prefix?: string } & CallOptions): Promise<number>;
  async clear(...args: [options?: { prefix?: string } & CallOptions]): Promise<number> {
    // An argument that is undefined is not "no argument": kv.clear(prefixThatIsUnset) must not clear every key.
    if (args.length > 0 && args[0] === undefined) {
      throw invalidArgument('clear was given undefined: give { prefix }, or call clear() with no argument to clear every key');
    }
    const [options = {}] = args;
    // A prefix given as undefined or null is a prefix someone meant to give, not "every key".
    if (isObject(options) && 'prefix' in options && (options.prefix === undefined || options.prefix === null)) {
      throw invalidArgument(
        `clear: prefix is ${String(options.prefix)}: give a string ('' for every key), or leave prefix out to clear every key`,
      );
    }
    assertOptions(options, 'clear', CLEAR_OPTIONS);
    const { deletedCount } = await this.write((s) => [s.kv, s.kv.clear], { prefix: options.prefix ?? '' }, options);
    return deletedCount;
  }

  /** One page of keys, as the ListKeys RPC returns it, with the revision it was read at. */
  async listKeysPage(
    request: { prefix?: string; pageSize?: number; pageToken?: string },
    options: CallOptions = {},
  ): Promise<{ keys: string[]; nextPageToken: string; revision: number }> {
    assertOptions(request, 'listKeysPage', PAGE_REQUEST, 'listKeysPage request');
    assertOptions(options, 'listKeysPage', CALL_OPTIONS);
    return this.read(
      (s) => [s.kv, s.kv.listKeys],
      { prefix: request.prefix ?? '', pageSize: request.pageSize ?? 0, pageToken: request.pageToken ?? '' },
      options,
    );
  }

  /** One page of entries (keys with values), as the List RPC returns it, with the revision it was read at. */
  async listPage<T = JsonValue>(
    request: { prefix?: string; pageSize?: number; pageToken?: string },
    options: CallOptions = {},
  ): Promise<{ entries: KvEntry<T>[]; nextPageToken: string; revision: number }> {
    assertOptions(request, 'listPage', PAGE_REQUEST, 'listPage request');
    assertOptions(options, 'listPage', CALL_OPTIONS);
    const page = await this.read(
      (s) => [s.kv, s.kv.list],
      { prefix: request.prefix ?? '', pageSize: request.pageSize ?? 0, pageToken: request.pageToken ?? '' },
      options,
    );
    return { entries: page.entries.map((e) => toKvEntry<T>(e)), nextPageToken: page.nextPageToken, revision: page.revision };
  }

  /** Every entry under prefix in code point order of the keys, fetched a page at a time. */
  async *entries<T = JsonValue>(
    options: { prefix?: string; pageSize?: number } & CallOptions = {},
  ): AsyncGenerator<KvEntry<T>, void, undefined> {
    assertOptions(options, 'entries', LIST_OPTIONS);
    let pageToken = '';
    do {
      const page = await this.listPage<T>(
        { prefix: options.prefix, pageSize: options.pageSize, pageToken },
        { deadlineMs: options.deadlineMs },
      );
      yield* page.entries;
      pageToken = page.nextPageToken;
    } while (pageToken !== '');
  }

  /** Every key under prefix in code point order, fetched a page at a time. */
  async *keys(options: { prefix?: string; pageSize?: number } & CallOptions = {}): AsyncGenerator<string, void, undefined> {
    assertOptions(options, 'keys', LIST_OPTIONS);
    let pageToken = '';
    do {
      const page = await this.listKeysPage(
        { prefix: options.prefix, pageSize: options.pageSize, pageToken },
        { deadlineMs: options.deadlineMs },
      );
      yield* page.keys;
      pageToken = page.nextPageToken;
    } while (pageToken !== '');
  }

  /**
   * Watches a key or a prefix: `for await (const event of kv.watch({ prefix: 'app/' }))`.
   * Each change once, in revision order, resuming by itself after a
   * disconnect or a server restart; see KvWatch.
   */
  watch<T = JsonValue>(options: WatchOptions): KvWatch<T> {
    // Each (re)connection of the watch goes to the next server in turn, so a resume after a frontend died finds another.
    return new KvWatch<T>(
      () => this.pickConnected(),
      options,
      () => this.metadata(),
      this.watches,
      this.receiveLimitBytes,
    );
  }

  /**
   * Writes a consistent snapshot of the whole store (the Backup RPC, at one
   * revision, while the server goes on taking writes) to `destination`,
   * checked as it arrives. A regular file (or a new one, or a symbolic link
   * to one) is written beside it, fsynced, read back and checked again, then
   * renamed into place (at a link's target; the link is kept), replacing an
   * older file only once complete. A path that is not a regular file (a
   * device, a FIFO) is written straight through, and so is a stream (say,
   * process.stdout), which is left open. Needs the admin permission on every
   * key. Not retried: run it again. A path that cannot be written (no name,
   * a directory, a missing directory, no permission) fails before anything
   * is asked of the server, with the file system's error.
   */
  async backup(destination: BackupDestination, options: BackupOptions = {}): Promise<BackupSummary> {
    if (
      typeof destination !== 'string' &&
      !(isObject(destination) && typeof (destination as Partial<NodeJS.WritableStream>).write === 'function')
    ) {
      throw invalidArgument(`backup destination must be a file path or a writable stream, got ${describeArgument(destination)}`);
    }
    assertOptions(options, 'backup', BACKUP_OPTIONS);
    if (this.closed) throw clientClosed();
    const { signal } = options;
    const stopped = (): boolean => signal?.aborted === true;
    if (stopped()) throw backupStopped();
    const deadline = options.deadlineMs === undefined ? undefined : new Date(Date.now() + options.deadlineMs);
    // However long the backup may run, it must start (its first message, the header) within the call deadline.
    const startWithinMs = Math.min(this.deadlineMs, options.deadlineMs ?? Number.POSITIVE_INFINITY);
    let call: ReturnType<typeof rawBackupStream> | undefined;
    const open = (): AsyncIterable<Buffer> => {
      if (stopped()) throw backupStopped();
      return this.backupStream(startWithinMs, deadline, (opened) => (call = opened));
    };
    const stop = (): void => call?.cancel();
    signal?.addEventListener('abort', stop);
    try {
      return await writeBackupFile(open, destination, options.onProgress);
    } catch (error) {
      // However the cancelled call surfaced (CANCELLED from grpc-js, or the file's cleanup), the caller stopped it.
      if (stopped()) throw backupStopped(error);
      throw error;
    } finally {
      signal?.removeEventListener('abort', stop);
      call?.cancel();
    }
  }

  /**
   * A Backup call's messages. The server is one whose connection comes up
   * (with several, each is given connectTimeoutMs, as calls are), and the
   * first message must come within `startWithinMs`: a server that accepts connections
   * but does not answer (stopped, or not a kv server) fails the backup with
   * DEADLINE_EXCEEDED instead of holding it forever.
   */
  private async *backupStream(
    startWithinMs: number,
    deadline: Date | undefined,
    opened: (call: ReturnType<typeof rawBackupStream>) => void,
  ): AsyncGenerator<Buffer, void, undefined> {
    const startBy = Date.now() + startWithinMs;
    const server = await this.connectedServer(startBy);
    const call = rawBackupStream(server.kv, this.metadata(), deadline === undefined ? {} : { deadline });
    // Its errors come through the iteration; this one listener keeps a cancel before any read from being thrown.
    call.on('error', () => undefined);
    opened(call);
    const messages = backupMessages(call, this.receiveLimitBytes)[Symbol.asyncIterator]();
    const firstMessage = messages.next();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), Math.max(0, startBy - Date.now()))));
    const first = await Promise.race([firstMessage, late]).finally(() => clearTimeout(timer));
    if (first === 'late') {
      // The cancelled call's own failure (CANCELLED) is not the caller's news.
      firstMessage.catch(() => undefined);
      call.cancel();
      throw new KvError(
        `no answer from ${server.address} within ${startWithinMs} ms: the backup did not start ` +
          '(the server accepts connections but does not answer)',
        status.DEADLINE_EXCEEDED,
        'DEADLINE_EXCEEDED',
      );
    }
    if (first.done === true) return;
    yield first.value;
    for (let next = await messages.next(); next.done !== true; next = await messages.next()) yield next.value;
  }

  /** The server's grpc.health.v1 status for kv.v1.KeyValueService. Retried like a read. */
  async health(options: CallOptions = {}): Promise<ServingStatus> {
    assertOptions(options, 'health', CALL_OPTIONS);
    const { status: serving } = await this.read((s) => [s.health, s.health.check], { service: 'kv.v1.KeyValueService' }, options);
    return serving === HealthCheckResponse_ServingStatus.UNRECOGNIZED
      ? 'UNKNOWN'
      : (healthCheckResponse_ServingStatusToJSON(serving) as ServingStatus);
  }

  /**
   * Ends keep-alives and watches (a watch being iterated ends quietly), and
   * closes the connections. Every call afterwards fails with a KvError
   * CANCELLED, "the client is closed".
   */
  close(): void {
    this.closed = true;
    this.leaseKeeper?.close(clientClosed());
    for (const watch of [...this.watches]) watch.close();
    for (const server of this.servers) server.kv.close();
  }

  /**
   * A read: on UNAVAILABLE it is tried again, on the next server in turn,
   * within one deadline; so, with several servers, is one that a port that
   * does not speak gRPC answered (NOT_GRPC: one address of the list is wrong),
   * or whose backend refused that server itself (BACKEND_REFUSED: its etcd
   * user or role is wrong, another server's may not be).
   */
  private read<Req, Res>(method: MethodOf<Req, Res>, request: Req, options?: CallOptions): Promise<Res> {
    // These move on through the list once, never back to an address that gave them.
    const others = this.servers.length - 1;
    return this.retried(
      method,
      request,
      options,
      (error, attempt) => error.code === status.UNAVAILABLE || (onlyThatServer(error) && attempt <= others),
      false,
    );
  }

  /**
   * A call tried again while `again` says so of its failure, on the next
   * server in turn, within one deadline (the call's as a whole: retries never
   * stretch it past what the caller allowed). `first`: the number of this
   * first try (2 when one has already failed, `failed` being its error), so
   * that RetryOptions.attempts counts every try.
   */
  private async retried<Req, Res>(
    method: MethodOf<Req, Res>,
    request: Req,
    options: CallOptions | undefined,
    again: (error: KvError, attempt: number) => boolean,
    writes: boolean,
    first = 1,
    failed?: unknown,
  ): Promise<Res> {
    const started = Date.now();
    const deadline = this.deadline(options);
    const stubs = this.servers.map((s) => s.kv);
    let last = failed;
    const avoid = new Set<Server>();
    passOver(avoid, failed);
    // Out of time after a failure that was tried again: why the call failed is that answer, with how long it kept trying.
    const outOfTime = (answer: unknown): unknown =>
      answer instanceof KvError
        ? withNote(answer, `tried again until the call's deadline passed, ${((Date.now() - started) / 1000).toFixed(1)} s after it began`)
        : answer;
    for (let attempt = first; ; attempt++) {
      // With several servers the next one is tried at once; the backoff is for when all of them failed.
      if (attempt > 1 && (attempt - 1) % stubs.length === 0) {
        const backoff = Math.min(this.maxBackoffMs, this.initialBackoffMs * 2 ** (attempt - 2));
        await connectionChangeOrTimeout(stubs, Math.min(backoff, Math.max(0, deadline - Date.now())));
        if (Date.now() >= deadline) throw outOfTime(last);
      }
      try {
        return await this.call(method, request, deadline, writes, avoid);
      } catch (error) {
        passOver(avoid, error);
        // A read's retry that the call's deadline cut short (every try has the call's deadline) says only that time ran
        // out: the answer that made it try again says why. Not a write's: that retry was sent, and may have been applied.
        // grpc-js may tell its deadline a few ms before Date.now() reaches it.
        const cutShort = error instanceof KvError && error.code === status.DEADLINE_EXCEEDED && deadline - Date.now() < DEADLINE_SLACK_MS;
        if (!writes && last instanceof KvError && cutShort) throw outOfTime(last);
        last = error;
        const retry = error instanceof KvError && again(error, attempt) && attempt < this.attempts;
        if (!retry || deadline - Date.now() <= 0) throw error;
      }
    }
  }

  private deadline(options: CallOptions | undefined): number {
    return Date.now() + (options?.deadlineMs ?? this.deadlineMs);
  }

  /** Metadata every call carries: the token, if any. */
  private metadata(): Metadata {
    const metadata = new Metadata();
    if (this.authorization !== undefined) metadata.set('authorization', this.authorization);
    return metadata;
  }

  /**
   * A write: sent once, to one server; its failure is the caller's to judge
   * (it may have happened). One that could not be sent at all (its server
   * could not be connected to, or it refused the call for its own setup: NOT_GRPC,
   * BACKEND_REFUSED) is tried on the next server, each once; one
   * its server did not send on (reason NOT_SENT: nothing was applied) is
   * retried as a read is.
   */
  private async write<Req, Res>(method: MethodOf<Req, Res>, request: Req, options: CallOptions): Promise<Res> {
    const deadline = this.deadline(options);
    const avoid = new Set<Server>();
    for (let tried = 1; ; tried++) {
      try {
        return await this.call(method, request, deadline, true, avoid);
      } catch (error) {
        passOver(avoid, error);
        if (error instanceof KvError && error.reason === 'NOT_SENT' && this.attempts > 1 && Date.now() < deadline) {
          const left = { ...options, deadlineMs: deadline - Date.now() };
          return this.retried(method, request, left, (again) => again.reason === 'NOT_SENT' || neverSent(again), true, 2, error);
        }
        // A port that does not speak gRPC, or a server whose backend refused it, applied nothing: the next server is
        // asked, as for a call never sent.
        if (!(neverSent(error) || onlyThatServer(error)) || tried >= this.servers.length || Date.now() >= deadline) throw error;
      }
    }
  }

  /**
   * The next server in turn, passing over those whose connection is known
   * to have failed (while any other is not): choosing before a call is
   * sent is not a retry, so writes use it too.
   */
  private pick(avoid?: ReadonlySet<Server>): Server {
    // grpc-js would throw a plain Error, "Channel has been shut down".
    if (this.closed) throw clientClosed();
    const states = this.servers.map((server) => server.kv.getChannel().getConnectivityState(false));
    // While another server's connection is up, one still connecting (perhaps to a server that does not answer) is passed over too.
    const someReady = states.includes(connectivityState.READY);
    // A call's retry passes over the servers that failed it alone (onlyThatServer), while any other is left: the turn
    // is shared by every call, so it alone does not lead a retry away from them.
    const others = avoid === undefined ? this.servers : this.servers.filter((server) => !avoid.has(server));
    if (others.length > 0 && others.length < this.servers.length) {
      for (let i = 0; i < this.servers.length; i++) {
        const index = this.turn++ % this.servers.length;
        if (!avoid?.has(this.servers[index])) return this.servers[index];
      }
    }
    for (let i = 0; i < this.servers.length; i++) {
      const index = this.turn++ % this.servers.length;
      const state = states[index];
      if (state !== connectivityState.TRANSIENT_FAILURE && !(someReady && state === connectivityState.CONNECTING))
        return this.servers[index];
    }
    return this.servers[this.turn++ % this.servers.length];
  }

  /**
   * For a stream: the next server in turn whose connection comes up within
   * connectTimeoutMs (by `deadline`), passing over one that accepts
   * connections but does not answer, as calls do. If none does, the last
   * one's failure (UNAVAILABLE, nothing sent).
   */
  private async connectedServer(deadline: number): Promise<Server> {
    for (let tried = 1; ; tried++) {
      const server = this.pick();
      try {
        await this.connectedWithin(server, deadline);
        return server;
      } catch (error) {
        if (tried >= this.servers.length) throw error;
      }
    }
  }

  /** For a watch: connectedServer, or if none came up the next in turn (the watch's own timers and retries then judge it). */
  private async pickConnected(): Promise<KeyValueServiceClient> {
    return (await this.connectedServer(Number.POSITIVE_INFINITY).catch(() => this.pick())).kv;
  }

  /**
   * With several servers, waits up to connectTimeoutMs (within the call's
   * deadline) for `server`'s connection to be up; if it is not, fails as a
   * call never sent (UNAVAILABLE), which the next server is tried for.
   */
  private async connectedWithin(server: Server, deadline: number): Promise<void> {
    if (this.servers.length === 1) return;
    const channel = server.kv.getChannel();
    const until = Math.min(deadline, Date.now() + this.connectTimeoutMs);
    let state = channel.getConnectivityState(true);
    while (state === connectivityState.IDLE || state === connectivityState.CONNECTING) {
      const from = state;
      const changed = await new Promise<boolean>((resolve) =>
        channel.watchConnectivityState(from, new Date(until), (error) => resolve(error === undefined)),
      );
      if (!changed) break;
      state = channel.getConnectivityState(false);
    }
    // Up, or failed (the call then fails at once as never sent), or out of the call's own time (it fails on its deadline).
    if (state !== connectivityState.IDLE && state !== connectivityState.CONNECTING) return;
    if (Date.now() >= deadline || until === deadline) return;
    const error = new KvError(
      `no connection to ${server.address} within ${this.connectTimeoutMs} ms (connectTimeoutMs): ` +
        'it accepts connections but does not answer, or is slow to; nothing was sent',
      status.UNAVAILABLE,
      'UNAVAILABLE',
    );
    NEVER_SENT.add(error);
    throw error;
  }

  /** With several servers, a NOT_GRPC answer names the address that gave it: which one of the list is wrong. */
  private named(error: KvError, server: Server): KvError {
    if (this.servers.length === 1 || error.reason !== 'NOT_GRPC') return error;
    return new KvError(`${server.address}: ${error.message}`, error.code, error.reason, error.currentRevision, error.cause);
  }

  /** `writes`: whether the method can write, for what an answer over the receive limit says (KvError.from). */
  private async call<Req, Res>(
    method: MethodOf<Req, Res>,
    request: Req,
    deadline: number,
    writes: boolean,
    avoid?: ReadonlySet<Server>,
  ): Promise<Res> {
    const metadata = this.metadata();
    const server = this.pick(avoid);
    await this.connectedWithin(server, deadline);
    const [target, fn] = method(server);
    return new Promise((resolve, reject) => {
      fn.call(target, request, metadata, { deadline: new Date(deadline) }, (error, response) => {
        if (!error) return resolve(response);
        const failed = this.named(KvError.from(error, this.receiveLimitBytes, writes ? 'write' : 'read'), server);
        FAILED_AT.set(failed, server);
        reject(failed);
      });
    });
  }
}

/** How early grpc-js may report a call's deadline, by Date.now(): its timers run on the event loop's cached time. */
const DEADLINE_SLACK_MS = 50;

/** An answer from something that is not a gRPC server (an HTTP port): nothing was applied. */
function notGrpc(error: unknown): boolean {
  return error instanceof KvError && error.reason === 'NOT_GRPC';
}

/** The server each failed call was sent to (KvClient.call). */
const FAILED_AT = new WeakMap<KvError, Server>();

/** Adds the server `error` came from to `avoid` if it failed the call alone (onlyThatServer). */
function passOver(avoid: Set<Server>, error: unknown): void {
  const server = error instanceof KvError ? FAILED_AT.get(error) : undefined;
  if (server !== undefined && onlyThatServer(error)) avoid.add(server);
}

/**
 * A failure of that server alone, which applied nothing: the address is no kv-server's gRPC port (NOT_GRPC), or the
 * server's backend refused the server itself (BACKEND_REFUSED). Another server of the list may answer.
 */
function onlyThatServer(error: unknown): boolean {
  return notGrpc(error) || (error instanceof KvError && error.reason === 'BACKEND_REFUSED');
}

/** Errors of calls the SDK itself did not send (connectedWithin). */
const NEVER_SENT = new WeakSet<KvError>();

/**
 * Whether a call failed before its request left: grpc-js fails a call with
 * "No connection established" when its channel could not connect (refused,
 * unreachable) and the call did not ask to wait; nothing reached a server.
 */
function neverSent(error: unknown): boolean {
  if (!(error instanceof KvError) || error.code !== status.UNAVAILABLE) return false;
  if (NEVER_SENT.has(error)) return true;
  const details = (error.cause as Partial<ServiceError> | undefined)?.details;
  return typeof details === 'string' && details.startsWith('No connection established');
}

function backupStopped(cause?: unknown): KvError {
  return new KvError('the backup was stopped (its signal was aborted)', status.CANCELLED, 'CANCELLED', undefined, cause);
}

function clientClosed(): KvError {
  return new KvError('the client is closed (KvClient.close() was called)', status.CANCELLED, 'CANCELLED');
}

/** The addresses given: one host:port, or a list of them. */
function serverAddresses(address: unknown): string[] {
  const list: unknown[] = Array.isArray(address) ? [...(address as unknown[])] : [address];
  const odd = list.findIndex((a) => typeof a !== 'string');
  if (odd !== -1) {
    const where = Array.isArray(address) ? ' in the list' : '';
    throw invalidArgument(`address must be host:port or a list of them, got ${describeArgument(list[odd])}${where}`);
  }
  const addresses = list as string[];
  if (addresses.length === 0 || addresses.some((a) => a.trim() === '')) {
    throw invalidArgument('address must name at least one server, and none empty');
  }
  return addresses;
}

/** A Backup call's messages, its failure a KvError. */
async function* backupMessages(call: AsyncIterable<Buffer>, receiveLimitBytes: number): AsyncGenerator<Buffer, void, undefined> {
  try {
    for await (const message of call) yield message;
  } catch (error) {
    throw KvError.from(error, receiveLimitBytes, 'stream');
  }
}

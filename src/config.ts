import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import type { LogLevel } from './logger';
import { MAX_TIMER_MS } from './max-timer';
import { isLoopbackHost } from './security/listen-policy';
import type { FsyncMode } from './store/file';

/** Everything the server can be told, from flags or KV_* environment variables (flags win). */
export interface Config {
  listen: string;
  /** host:port for Connect, gRPC-Web and the web console; undefined: no HTTP port. */
  httpListen: string | undefined;
  dataDir: string;
  fsync: FsyncMode;
  fsyncIntervalMs: number;
  /** fsync=always: µs the event loop polls instead of sleeping around each batch's fdatasync; 0 = off. */
  busyPollUs: number;
  maxKeyBytes: number;
  maxValueBytes: number;
  logLevel: LogLevel;
  shutdownGraceMs: number;
  watchProgressMs: number;
  watchHistoryChanges: number;
  watchHistoryBytes: number;
  maxTxnOps: number;
  /** A backup file to build the (empty or new) data directory from before serving. */
  restoreFrom: string | undefined;
  /** host:port of the HTTP listener for /metrics, /healthz and /readyz; undefined: none. */
  metricsListen: string | undefined;
  // Security (docs/security.md); file paths are undefined when not given.
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  tlsClientCa: string | undefined;
  authFile: string | undefined;
  authFailuresPerMinute: number;
  insecure: boolean;
  reflection: boolean;
  // Connection limits (src/server/connection-limits.ts, docs/operations.md); 0 = never where allowed.
  handshakeTimeoutMs: number;
  keepaliveTimeMs: number;
  keepaliveTimeoutMs: number;
  maxConnectionIdleMs: number;
  maxConnectionAgeMs: number;
  maxConnectionAgeGraceMs: number;
  maxConcurrentStreams: number;
  maxHealthStreamsPerConnection: number;
  maxConnections: number;
  /** Of those, open at once from one client address (IPv6: one /64); 0 = no cap of its own. */
  maxConnectionsPerAddress: number;
  /** Processes serving gRPC: 1 = one process; N > 1 = a supervisor, a store owner and N workers on one port (docs/operations.md). */
  workers: number;
  // The engine, and how to reach etcd when it is etcd (docs/scaling.md).
  engine: Engine;
  etcdEndpoints: string[];
  etcdPrefix: string;
  etcdCa: string | undefined;
  etcdCert: string | undefined;
  etcdKey: string | undefined;
  etcdUsername: string | undefined;
  etcdPasswordFile: string | undefined;
  etcdPlaintext: EtcdPlaintext;
  etcdMaxRequestBytes: number;
  etcdTimeoutMs: number;
}

export type Engine = 'file' | 'etcd';
export type EtcdPlaintext = 'loopback' | 'allow';
const ENGINES: readonly Engine[] = ['file', 'etcd'];
const ETCD_PLAINTEXT: readonly EtcdPlaintext[] = ['loopback', 'allow'];

/** More processes than this on one machine only add context switches. */
const MAX_WORKERS = 64;
/** Polling longer than this after a batch only burns CPU: the next request of a waiting client comes well within it. */
const MAX_BUSY_POLL_US = 10_000;

const FSYNC_MODES: readonly FsyncMode[] = ['always', 'interval', 'never'];
const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

interface Setting {
  flag: string;
  env: string;
  default: string;
  help: string;
  /** A flag that takes no value (--insecure); its env variable is true/false/1/0. */
  boolean?: true;
}

const SETTINGS = {
  listen: { flag: 'listen', env: 'KV_LISTEN', default: '127.0.0.1:50051', help: 'host:port to serve gRPC on (port 0 picks a free port)' },
  httpListen: {
    flag: 'http-listen',
    env: 'KV_HTTP_LISTEN',
    default: '',
    help: 'host:port to serve kv.v1 over HTTP on (Connect JSON, gRPC-Web) with the web console at /; off if empty',
  },
  dataDir: { flag: 'data-dir', env: 'KV_DATA_DIR', default: './data', help: 'directory of the embedded store (created if missing)' },
  fsync: { flag: 'fsync', env: 'KV_FSYNC', default: 'always', help: 'always | interval | never (see docs/storage-format.md)' },
  fsyncIntervalMs: { flag: 'fsync-interval-ms', env: 'KV_FSYNC_INTERVAL_MS', default: '1000', help: 'fsync period for --fsync interval' },
  busyPollUs: {
    flag: 'busy-poll-us',
    env: 'KV_BUSY_POLL_US',
    default: '500',
    help: 'with --fsync always, µs the server polls instead of sleeping through each fdatasync and after answering (lower latency, more CPU); 0 = off, at most 10000; under --workers off unless given',
  },
  maxKeyBytes: { flag: 'max-key-bytes', env: 'KV_MAX_KEY_BYTES', default: '4096', help: 'largest key, in UTF-8 bytes' },
  maxValueBytes: { flag: 'max-value-bytes', env: 'KV_MAX_VALUE_BYTES', default: '1048576', help: 'largest value, in JSON-encoded bytes' },
  logLevel: { flag: 'log-level', env: 'KV_LOG_LEVEL', default: 'info', help: LOG_LEVELS.join(' | ') },
  shutdownGraceMs: {
    flag: 'shutdown-grace-ms',
    env: 'KV_SHUTDOWN_GRACE_MS',
    default: '10000',
    help: 'on SIGTERM/SIGINT, how long calls in flight may finish (Watch and KeepAlive streams end at once); 0: none, they are cancelled at once',
  },
  watchProgressMs: {
    flag: 'watch-progress-ms',
    env: 'KV_WATCH_PROGRESS_MS',
    default: '5000',
    help: 'an idle Watch stream gets a progress message about this often',
  },
  watchHistoryChanges: {
    flag: 'watch-history-changes',
    env: 'KV_WATCH_HISTORY_CHANGES',
    default: '100000',
    help: 'recent changes kept for watchers to resume from (also bounded by bytes)',
  },
  watchHistoryBytes: {
    flag: 'watch-history-bytes',
    env: 'KV_WATCH_HISTORY_BYTES',
    default: '67108864',
    help: 'memory the kept changes may use (estimated)',
  },
  maxTxnOps: {
    flag: 'max-txn-ops',
    env: 'KV_MAX_TXN_OPS',
    default: '128',
    help: 'the most compares, and ops per branch, of one Txn',
  },
  restoreFrom: {
    flag: 'restore-from',
    env: 'KV_RESTORE_FROM',
    default: '',
    help: 'first build --data-dir (empty or new) from this backup file (kvctl backup), then serve it; a non-empty directory is refused',
  },
  metricsListen: {
    flag: 'metrics-listen',
    env: 'KV_METRICS_LISTEN',
    default: '',
    help: 'host:port to serve Prometheus metrics (/metrics), /healthz and /readyz on, over plain HTTP',
  },
  tlsCert: {
    flag: 'tls-cert',
    env: 'KV_TLS_CERT',
    default: '',
    help: 'PEM certificate chain: serve TLS (with --tls-key); re-read on SIGHUP',
  },
  tlsKey: { flag: 'tls-key', env: 'KV_TLS_KEY', default: '', help: 'PEM private key of --tls-cert; re-read on SIGHUP' },
  tlsClientCa: {
    flag: 'tls-client-ca',
    env: 'KV_TLS_CLIENT_CA',
    default: '',
    help: 'PEM CA certificates: require client certificates signed by one (mutual TLS); re-read on SIGHUP',
  },
  authFile: {
    flag: 'auth-file',
    env: 'KV_AUTH_FILE',
    default: '',
    help: 'roles, token hashes, certificate identities (JSON or YAML); re-read on SIGHUP. WITHOUT IT EVERY CALLER MAY DO EVERYTHING',
  },
  authFailuresPerMinute: {
    flag: 'auth-failures-per-minute',
    env: 'KV_AUTH_FAILURES_PER_MINUTE',
    default: '30',
    help: 'unknown tokens accepted from one client address per minute before it is refused for a while (per worker under --workers)',
  },
  insecure: {
    flag: 'insecure',
    env: 'KV_INSECURE',
    default: 'false',
    help: 'allow plaintext, or callers without credentials, on a non-loopback --listen or --http-listen address',
    boolean: true,
  },
  reflection: { flag: 'reflection', env: 'KV_REFLECTION', default: 'on', help: 'on | off: serve grpc.reflection (the API, never data)' },
  handshakeTimeoutMs: {
    flag: 'handshake-timeout-ms',
    env: 'KV_HANDSHAKE_TIMEOUT_MS',
    default: '10000',
    help: 'a new connection must send the HTTP/2 preface (with TLS: finish the handshake) within this',
  },
  keepaliveTimeMs: {
    flag: 'keepalive-time-ms',
    env: 'KV_KEEPALIVE_TIME_MS',
    default: '60000',
    help: 'ping each connection this often (0: never)',
  },
  keepaliveTimeoutMs: {
    flag: 'keepalive-timeout-ms',
    env: 'KV_KEEPALIVE_TIMEOUT_MS',
    default: '20000',
    help: 'close a connection whose ping is not answered within this',
  },
  maxConnectionIdleMs: {
    flag: 'max-connection-idle-ms',
    env: 'KV_MAX_CONNECTION_IDLE_MS',
    default: '300000',
    help: 'close a connection without calls for this long (GOAWAY; 0: never)',
  },
  maxConnectionAgeMs: {
    flag: 'max-connection-age-ms',
    env: 'KV_MAX_CONNECTION_AGE_MS',
    default: '0',
    help: 'ask a connection to go away after about this long (0: never)',
  },
  maxConnectionAgeGraceMs: {
    flag: 'max-connection-age-grace-ms',
    env: 'KV_MAX_CONNECTION_AGE_GRACE_MS',
    default: '30000',
    help: 'then let its calls in flight finish for this long',
  },
  maxConcurrentStreams: {
    flag: 'max-concurrent-streams',
    env: 'KV_MAX_CONCURRENT_STREAMS',
    default: '1000',
    help: 'calls open at once on one connection',
  },
  maxHealthStreamsPerConnection: {
    flag: 'max-health-streams-per-connection',
    env: 'KV_MAX_HEALTH_STREAMS_PER_CONNECTION',
    default: '16',
    help: 'health Watch and reflection streams (which need no credentials) open at once on one connection; 0: no cap',
  },
  maxConnections: {
    flag: 'max-connections',
    env: 'KV_MAX_CONNECTIONS',
    default: '1000',
    help: 'connections open at once; more are closed at once (per worker under --workers)',
  },
  maxConnectionsPerAddress: {
    flag: 'max-connections-per-address',
    env: 'KV_MAX_CONNECTIONS_PER_ADDRESS',
    default: 'auto',
    help: 'of those, open at once from one client address (IPv6: one /64); auto: a quarter of --max-connections, at least 1; 0: no cap per address (all clients behind one proxy or NAT); per worker under --workers',
  },
  workers: {
    flag: 'workers',
    env: 'KV_WORKERS',
    default: '1',
    help: 'processes serving gRPC on the one port (auto: one per core; at most 64); above 1, one more process owns the store',
  },
  engine: { flag: 'engine', env: 'KV_ENGINE', default: 'file', help: 'file (embedded, --data-dir) | etcd (an etcd v3 cluster, --etcd-*)' },
  etcdEndpoints: {
    flag: 'etcd-endpoints',
    env: 'KV_ETCD_ENDPOINTS',
    default: '',
    help: 'etcd client URLs, comma-separated (http://host:2379 or https://...); every member, for failover',
  },
  etcdPrefix: {
    flag: 'etcd-prefix',
    env: 'KV_ETCD_PREFIX',
    default: 'kv/',
    help: "etcd key prefix kv keeps its keys under, ending in '/', so several kv deployments can share a cluster",
  },
  etcdCa: { flag: 'etcd-ca', env: 'KV_ETCD_CA', default: '', help: "PEM CA that signed etcd's certificates (https endpoints)" },
  etcdCert: {
    flag: 'etcd-cert',
    env: 'KV_ETCD_CERT',
    default: '',
    help: "PEM client certificate for etcd's --client-cert-auth (with --etcd-key)",
  },
  etcdKey: { flag: 'etcd-key', env: 'KV_ETCD_KEY', default: '', help: 'PEM private key of --etcd-cert' },
  etcdUsername: {
    flag: 'etcd-username',
    env: 'KV_ETCD_USERNAME',
    default: '',
    help: "etcd user (etcd's own auth; with --etcd-password-file)",
  },
  etcdPasswordFile: {
    flag: 'etcd-password-file',
    env: 'KV_ETCD_PASSWORD_FILE',
    default: '',
    help: 'file holding the etcd user’s password (never given on the command line)',
  },
  etcdPlaintext: {
    flag: 'etcd-plaintext',
    env: 'KV_ETCD_PLAINTEXT',
    default: 'loopback',
    help: 'loopback | allow: http:// (unencrypted) etcd endpoints only on loopback, or anywhere',
  },
  etcdMaxRequestBytes: {
    flag: 'etcd-max-request-bytes',
    env: 'KV_ETCD_MAX_REQUEST_BYTES',
    default: '1572864',
    help: "etcd's --max-request-bytes: kv's key and value limits must fit in it (checked at start)",
  },
  etcdTimeoutMs: {
    flag: 'etcd-timeout-ms',
    env: 'KV_ETCD_TIMEOUT_MS',
    default: '5000',
    help: 'deadline of one etcd call; reads retry within it, writes are reported UNAVAILABLE after it',
  },
} satisfies Record<keyof Config, Setting>;

/**
 * KV_* variables of the other kv tools, which may well be set where the
 * server runs and are not the server's mistakes: kvctl's (its --help lists
 * them), the Go and Python examples' KV_ADDRESS, and the test suite's own.
 * (Those kv-server sets for its --workers children are read only there.)
 */
const OTHER_TOOLS_ENV = [
  'KV_ENDPOINTS',
  'KV_TLS_CA',
  'KV_CLIENT_TLS_CERT',
  'KV_CLIENT_TLS_KEY',
  'KV_TOKEN',
  'KV_OUTPUT',
  'KV_TIMEOUT_MS',
  'KV_ADDRESS',
  'KV_CHROMIUM',
  'KV_CONSOLE_SCREENSHOTS',
  'KV_LOADED_MODULES_FILE',
  'KV_REQUIRE_ALL_CLIENTS',
  'KV_REQUIRE_DISK_FAULTS',
];

/**
 * A warning for the KV_* variables in `env` that nothing of kv reads (a
 * misspelt KV_FSYNK would otherwise leave fsync at its default without a
 * word), naming the known variable each is close to; undefined if none.
 */
export function unknownEnvironmentWarning(env: NodeJS.ProcessEnv): string | undefined {
  const known = [...Object.values(SETTINGS).map((s: Setting) => s.env), ...OTHER_TOOLS_ENV];
  const unknown = Object.keys(env)
    .filter((name) => name.startsWith('KV_') && !known.includes(name))
    .sort();
  if (unknown.length === 0) return undefined;
  const named = unknown.map((name) => {
    const nearest = nearestName(name, known);
    return nearest === undefined ? name : `${name} (did you mean ${nearest}?)`;
  });
  return unknown.length === 1
    ? `the environment variable ${named[0]} is not a kv-server setting and is ignored`
    : `the environment variables ${named.join(', ')} are not kv-server settings and are ignored`;
}

/** The name of `names` closest to `name` in edits, if it is close: two edits, or a quarter of the name after KV_. */
function nearestName(name: string, names: readonly string[]): string | undefined {
  const allowed = Math.max(2, Math.floor((name.length - 3) / 4));
  let best: { name: string; distance: number } | undefined;
  for (const candidate of names) {
    const distance = editDistance(name, candidate);
    if (distance <= allowed && (best === undefined || distance < best.distance)) best = { name: candidate, distance };
  }
  return best?.name;
}

/** Levenshtein distance: the fewest insertions, deletions and substitutions that turn `a` into `b`. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length];
}

/** A mistake in flags or environment: main prints the message and the usage, and exits 2. */
export class ConfigError extends Error {}

export function usage(): string {
  const lines = Object.values(SETTINGS).map((s: Setting) => {
    const name = s.boolean ? s.flag : `${s.flag} V`;
    const fallback = s.default === '' ? 'unset' : s.default;
    return `  --${name.padEnd(26)} ${s.help}\n  ${' '.repeat(28)} env ${s.env}, default ${fallback}`;
  });
  return [
    'usage: kv-server [flags]',
    '       kv-server token create --role NAME [--name NAME] [--auth-file FILE]',
    '',
    ...lines,
    '  --help                       print this and exit',
    '  --version                    print the version and exit',
  ].join('\n');
}

/**
 * `--workers -1` as `--workers=-1`: parseArgs calls a value that starts with
 * a dash ambiguous and says so in its own words; joined, the value reaches
 * kv's own check ("not a positive integer"). Only a negative number is
 * joined: no flag of kv's is a dash and a digit.
 */
function negativeValuesJoined(argv: string[], options: Record<string, { type: 'string' | 'boolean' }>): string[] {
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const next = argv[i + 1];
    if (flag.startsWith('--') && options[flag.slice(2)]?.type === 'string' && next !== undefined && /^-\d/.test(next)) {
      args.push(`${flag}=${next}`);
      i++;
    } else args.push(flag);
  }
  return args;
}

/**
 * Returns the config, or 'help' / 'version' when that was asked for. Throws ConfigError on a bad flag or value.
 * `cores` is what `--workers auto` counts (the machine's, unless a test says otherwise).
 */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv, cores = availableParallelism()): Config | 'help' | 'version' {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {
    help: { type: 'boolean', short: 'h' },
    version: { type: 'boolean' },
  };
  for (const s of Object.values(SETTINGS) as Setting[]) options[s.flag] = { type: s.boolean ? 'boolean' : 'string' };
  let parsed: { values: Record<string, string | boolean | undefined> };
  try {
    parsed = parseArgs({ args: negativeValuesJoined(argv, options), options, strict: true, allowPositionals: false });
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
  if (parsed.values.help === true) return 'help';
  if (parsed.values.version === true) return 'version';

  const raw = (key: keyof Config): { value: string; source: string } => {
    const s = SETTINGS[key];
    const flagValue = parsed.values[s.flag];
    if (typeof flagValue === 'string') return { value: flagValue, source: `--${s.flag}` };
    if (flagValue === true) return { value: 'true', source: `--${s.flag}` };
    const envValue = env[s.env];
    if (envValue !== undefined && envValue !== '') return { value: envValue, source: s.env };
    return { value: s.default, source: `default of --${s.flag}` };
  };
  const oneOf = <T extends string>(key: keyof Config, allowed: readonly T[]): T => {
    const { value, source } = raw(key);
    if (!(allowed as readonly string[]).includes(value)) {
      throw new ConfigError(`${source}: "${value}" is not one of ${allowed.join(', ')}`);
    }
    return value as T;
  };
  const positiveInt = (key: keyof Config): number => {
    const { value, source } = raw(key);
    if (!/^\d+$/.test(value) || Number(value) < 1 || !Number.isSafeInteger(Number(value))) {
      throw new ConfigError(`${source}: "${value}" is not a positive integer`);
    }
    return Number(value);
  };
  const wholeNumber = (key: keyof Config): number => {
    const { value, source } = raw(key);
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw new ConfigError(`${source}: "${value}" is not a whole number`);
    return Number(value);
  };
  const file = (key: keyof Config): string | undefined => {
    const { value, source } = raw(key);
    // A flag given empty names no file: most often a shell variable that is not set (--auth-file "$AUTH_FILE"). Taken as
    // no file, the server would start without what was asked for (with no auth file, every caller may do everything).
    if (value === '' && source === `--${SETTINGS[key].flag}`) {
      throw new ConfigError(`${source}: must not be empty (give a file, or leave the flag out)`);
    }
    return value === '' ? undefined : value;
  };
  const flag = (key: keyof Config): boolean => {
    const { value, source } = raw(key);
    if (value === 'true' || value === '1') return true;
    if (value === 'false' || value === '0') return false;
    throw new ConfigError(`${source}: "${value}" is not true, false, 1 or 0`);
  };
  // Node timers hold at most 2^31 - 1 ms (about 24.8 days); a longer one fires after 1 ms. `zeroAllowed`: 0 means never, or none.
  const durationMs = (key: keyof Config, zeroAllowed = false): number => {
    const { value, source } = raw(key);
    const ms = Number(value);
    if (!/^\d+$/.test(value) || ms > MAX_TIMER_MS || (ms === 0 && !zeroAllowed)) {
      throw new ConfigError(`${source}: "${value}" is not a number of milliseconds from ${zeroAllowed ? 0 : 1} to ${MAX_TIMER_MS}`);
    }
    return ms;
  };
  const microseconds = (key: keyof Config, max: number): number => {
    const { value, source } = raw(key);
    if (!/^\d+$/.test(value) || Number(value) > max)
      throw new ConfigError(`${source}: "${value}" is not a number of microseconds from 0 to ${max}`);
    return Number(value);
  };
  const hostPort = (key: 'listen' | 'httpListen', example: string): string => {
    const { value, source } = raw(key);
    if (!isHostPort(value)) throw new ConfigError(`${source}: "${value}" is not host:port (e.g. ${example})`);
    return value;
  };
  const listen = hostPort('listen', '127.0.0.1:50051');
  const httpListen = raw('httpListen').value === '' ? undefined : hostPort('httpListen', '127.0.0.1:8080');
  const dataDir = raw('dataDir');
  if (dataDir.value.trim() === '') throw new ConfigError(`${dataDir.source}: must not be empty`);
  const etcd = loadEtcdSettings(raw, oneOf, positiveInt, durationMs);
  const restoreFrom = file('restoreFrom');
  if (restoreFrom !== undefined && etcd.engine === 'etcd') {
    throw new ConfigError(
      '--restore-from builds a data directory of the file engine; with --engine etcd, restore the etcd cluster from its snapshot instead (`etcdctl snapshot restore` in etcd 3.4, `etcdutl snapshot restore` from 3.5)',
    );
  }
  const metrics = raw('metricsListen');
  if (metrics.value !== '' && !isHostPort(metrics.value)) {
    throw new ConfigError(`${metrics.source}: "${metrics.value}" is not host:port (e.g. 127.0.0.1:9464)`);
  }

  const workersRaw = raw('workers');
  // auto on a machine of more cores than that: as many as allowed, not a refusal to start.
  const givenWorkers = Number(workersRaw.value);
  if (workersRaw.value !== 'auto' && (!/^\d+$/.test(workersRaw.value) || givenWorkers < 1 || !Number.isSafeInteger(givenWorkers))) {
    throw new ConfigError(`${workersRaw.source}: "${workersRaw.value}" is not a positive integer or auto`);
  }
  const workers = workersRaw.value === 'auto' ? Math.min(cores, MAX_WORKERS) : givenWorkers;
  if (workers > MAX_WORKERS) {
    throw new ConfigError(
      `${workersRaw.source}: ${workers} workers is more than the ${MAX_WORKERS} allowed (auto: one per core, at most ${MAX_WORKERS})`,
    );
  }

  // Under --workers the store owner shares the cores with the workers, and its spinning takes their time
  // (docs/operations.md#busy-polling): there it polls only if told to.
  const busyPollUs = workers > 1 && raw('busyPollUs').source.startsWith('default') ? 0 : microseconds('busyPollUs', MAX_BUSY_POLL_US);

  const maxConnections = positiveInt('maxConnections');
  const perAddress = raw('maxConnectionsPerAddress');
  if (perAddress.value !== 'auto' && (!/^\d+$/.test(perAddress.value) || !Number.isSafeInteger(Number(perAddress.value)))) {
    throw new ConfigError(`${perAddress.source}: "${perAddress.value}" is not a number of connections (0: no cap per address) or auto`);
  }
  // A quarter: one address (a client, or the clients behind one NAT) can hold many connections, never every one.
  const maxConnectionsPerAddress = perAddress.value === 'auto' ? Math.max(1, Math.floor(maxConnections / 4)) : Number(perAddress.value);

  const [tlsCert, tlsKey, tlsClientCa] = [file('tlsCert'), file('tlsKey'), file('tlsClientCa')];
  if ((tlsCert === undefined) !== (tlsKey === undefined))
    throw new ConfigError('--tls-cert and --tls-key go together: give both or neither');
  if (tlsClientCa !== undefined && tlsCert === undefined) {
    throw new ConfigError('--tls-client-ca needs TLS: give --tls-cert and --tls-key too');
  }

  return {
    listen,
    httpListen,
    dataDir: dataDir.value,
    fsync: oneOf('fsync', FSYNC_MODES),
    fsyncIntervalMs: durationMs('fsyncIntervalMs'),
    busyPollUs,
    maxKeyBytes: positiveInt('maxKeyBytes'),
    maxValueBytes: positiveInt('maxValueBytes'),
    logLevel: oneOf('logLevel', LOG_LEVELS),
    shutdownGraceMs: durationMs('shutdownGraceMs', true),
    watchProgressMs: durationMs('watchProgressMs'),
    watchHistoryChanges: positiveInt('watchHistoryChanges'),
    watchHistoryBytes: positiveInt('watchHistoryBytes'),
    maxTxnOps: positiveInt('maxTxnOps'),
    restoreFrom,
    metricsListen: metrics.value === '' ? undefined : metrics.value,
    tlsCert,
    tlsKey,
    tlsClientCa,
    authFile: file('authFile'),
    authFailuresPerMinute: positiveInt('authFailuresPerMinute'),
    insecure: flag('insecure'),
    reflection: oneOf('reflection', ['on', 'off']) === 'on',
    handshakeTimeoutMs: durationMs('handshakeTimeoutMs'),
    keepaliveTimeMs: durationMs('keepaliveTimeMs', true),
    keepaliveTimeoutMs: durationMs('keepaliveTimeoutMs'),
    maxConnectionIdleMs: durationMs('maxConnectionIdleMs', true),
    maxConnectionAgeMs: durationMs('maxConnectionAgeMs', true),
    maxConnectionAgeGraceMs: durationMs('maxConnectionAgeGraceMs'),
    maxConcurrentStreams: positiveInt('maxConcurrentStreams'),
    maxHealthStreamsPerConnection: wholeNumber('maxHealthStreamsPerConnection'),
    maxConnections,
    maxConnectionsPerAddress,
    workers,
    ...etcd,
  };
}

type EtcdSettings = Pick<Config, Extract<keyof Config, `etcd${string}`> | 'engine'>;

/** The engine and the etcd flags, checked together: what the etcd engine needs, and nothing unencrypted off loopback unless allowed. */
function loadEtcdSettings(
  raw: (key: keyof Config) => { value: string; source: string },
  oneOf: <T extends string>(key: keyof Config, allowed: readonly T[]) => T,
  positiveInt: (key: keyof Config) => number,
  durationMs: (key: keyof Config) => number,
): EtcdSettings {
  const optional = (key: keyof Config): string | undefined => {
    const { value } = raw(key);
    return value === '' ? undefined : value;
  };
  const engine = oneOf('engine', ENGINES);
  const endpoints = raw('etcdEndpoints');
  const etcdEndpoints = endpoints.value
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '');
  const etcdPlaintext = oneOf('etcdPlaintext', ETCD_PLAINTEXT);
  if (engine === 'etcd') {
    if (etcdEndpoints.length === 0) {
      throw new ConfigError('--engine etcd needs --etcd-endpoints (e.g. http://127.0.0.1:2379,http://127.0.0.1:22379)');
    }
    for (const endpoint of etcdEndpoints) {
      let url: URL;
      try {
        url = new URL(endpoint);
      } catch {
        throw new ConfigError(`${endpoints.source}: "${endpoint}" is not a URL (http://host:port or https://host:port)`);
      }
      if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.port === '' || url.pathname !== '/') {
        throw new ConfigError(`${endpoints.source}: "${endpoint}" is not http://host:port or https://host:port`);
      }
      if (url.protocol === 'http:' && etcdPlaintext === 'loopback' && !isLoopbackHost(url.hostname)) {
        throw new ConfigError(
          `${endpoints.source}: "${endpoint}" is unencrypted and not on loopback: use https:// (with --etcd-ca), or --etcd-plaintext allow`,
        );
      }
    }
    const schemes = new Set(etcdEndpoints.map((e) => new URL(e).protocol));
    if (schemes.size > 1) throw new ConfigError(`${endpoints.source}: mixes http:// and https:// endpoints; use one scheme for all`);
  }
  const [etcdCert, etcdKey] = [optional('etcdCert'), optional('etcdKey')];
  if ((etcdCert === undefined) !== (etcdKey === undefined))
    throw new ConfigError('--etcd-cert and --etcd-key go together: give both or neither');
  const etcdCa = optional('etcdCa');
  // With either, the etcd client speaks TLS to every endpoint whatever its scheme: an http:// endpoint would silently be TLS.
  if (engine === 'etcd' && (etcdCa !== undefined || etcdCert !== undefined) && new URL(etcdEndpoints[0]).protocol === 'http:') {
    throw new ConfigError(
      `${etcdCa !== undefined ? '--etcd-ca' : '--etcd-cert'} is for TLS to etcd, but ${endpoints.source} are http:// (plaintext): use https:// endpoints, or leave out --etcd-ca, --etcd-cert and --etcd-key`,
    );
  }
  const [etcdUsername, etcdPasswordFile] = [optional('etcdUsername'), optional('etcdPasswordFile')];
  if ((etcdUsername === undefined) !== (etcdPasswordFile === undefined)) {
    throw new ConfigError('--etcd-username and --etcd-password-file go together: give both or neither');
  }
  const prefix = raw('etcdPrefix');
  if (engine === 'etcd') checkEtcdPrefix(prefix);
  return {
    engine,
    etcdEndpoints,
    etcdPrefix: prefix.value,
    etcdCa,
    etcdCert,
    etcdKey,
    etcdUsername,
    etcdPasswordFile,
    etcdPlaintext,
    etcdMaxRequestBytes: positiveInt('etcdMaxRequestBytes'),
    etcdTimeoutMs: durationMs('etcdTimeoutMs'),
  };
}

/**
 * An --etcd-prefix is a namespace only if it ends in '/': kv's keys follow
 * it byte for byte, so the keys under "qa" include those under "qa2/"
 * (another deployment's, read, listed and cleared as this one's), and ""
 * is every key of the cluster, every other program's included.
 */
function checkEtcdPrefix({ value, source }: { value: string; source: string }): void {
  const named = source.startsWith('--') ? source : `${source} (--etcd-prefix)`;
  if (value === '') {
    throw new ConfigError(
      `${named}: must not be empty (kv would own every key of the etcd cluster, other programs' too); give a prefix ending in '/', such as "kv/"`,
    );
  }
  if (!value.endsWith('/')) {
    throw new ConfigError(
      `${named}: "${value}" does not end in '/', so it would also cover the keys of other prefixes that start with it (such as "${value}2/"); give "${value}/"`,
    );
  }
}

/** host:port with a port up to 65535; the host a name, an IPv4 address or a bracketed IPv6 one. */
function isHostPort(value: string): boolean {
  return /^(\[[0-9a-fA-F:.]+\]|[^:\s]+):\d{1,5}$/.test(value) && Number(value.split(':').pop()) <= 65535;
}

#!/usr/bin/env node
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { AuthFileError } from './auth/auth-file-error';
import { ClusterMembers } from './cluster/cluster-members';
import type { GoodSecurityMaterial } from './cluster/security-material';
import type { ServingSecurity } from './cluster/worker-security';
import {
  childName,
  childRole,
  ownerSocketPath,
  pinnedAddresses,
  type ProcessRole,
  type ReloadMessage,
  sendToChild,
  type StopMessage,
  tellSupervisor,
  OWNER_LOST_GRACE_MS,
  type StoppingNotice,
} from './cluster/process-role';
import { ConfigError, loadConfig, unknownEnvironmentWarning, usage, type Config } from './config';
import { readConsoleAssets } from './console-assets/read-console-assets';
import { createLogger, ignoreStderrWriteErrors, type Logger } from './logger';
import type { ServerMetrics } from './metrics/server-metrics';
import type { MetricsServer, MetricsSource } from './metrics/metrics-server';
import { describeStoreLocation, openConfiguredStore, warnOfEtcdCertExpiry } from './open-store';
import { createServer, type KvServer } from './server/create-server';
import { isLoopbackHost, listenPolicyProblem } from './security/listen-policy';
import { TlsFileError } from './security/read-tls-files';
import { loadServerSecurity } from './security/server-security';
import { StoreError } from './store/errors';
import { FileStore } from './store/file';
import { LockNotReleasedError } from './store/file/data-dir-lock';
import type { KeyValueStore } from './store/key-value-store';

/** How long a child of --workers waits for the supervisor's stop after a SIGTERM of its own before it says it ignored it. */
const IGNORED_SIGNAL_SAY_MS = 1000;

/**
 * Exit codes: 0 clean stop (also one asked for by a signal before the server
 * served), 1 could not start or stop cleanly, 2 bad flags or environment.
 */
async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'token') {
    const { runTokenCreate, TOKEN_CREATE_USAGE } = await import('./auth/token-create');
    if (argv[1] === 'create') return runTokenCreate(argv.slice(2), process.stdout, process.stderr);
    process.stderr.write(`kv-server: unknown command "${argv.slice(0, 2).join(' ')}"\n${TOKEN_CREATE_USAGE}\n`);
    return 2;
  }
  // First of all: a SIGTERM or SIGINT while the store recovers must stop the recovery, not be lost.
  // A child of the supervisor (--workers N) hears only the supervisor: a terminal's Ctrl-C reaches every process of the group.
  const role = childRole();
  const forcedStop = { dataNote: 'no write was acknowledged yet' };
  const stop = role === 'single' ? listenForStop(forcedStop) : listenForSupervisorStop();
  let config: Config | 'help' | 'version';
  try {
    config = loadConfig(argv, process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`kv-server: ${error.message}\n\n${usage()}\n`);
    return 2;
  }
  if (config === 'help') {
    process.stdout.write(`${usage()}\n`);
    return 0;
  }
  if (config === 'version') {
    process.stdout.write(`kv-server ${serverVersion()}\n`);
    return 0;
  }
  if (role === 'worker') config = { ...config, ...definedOnly(pinnedAddresses()) };
  forcedStop.dataNote = whatAForcedStopKeeps(config);

  const tls = config.tlsCert !== undefined;
  // The HTTP port serves the same calls with the same certificates and callers: the same rule.
  const policyProblem = [config.listen, config.httpListen]
    .filter((listen) => listen !== undefined)
    .map((listen) =>
      listenPolicyProblem({
        listen,
        tls,
        callersIdentified: config.authFile !== undefined || config.tlsClientCa !== undefined,
        insecure: config.insecure,
      }),
    )
    .find((problem) => problem !== undefined);
  if (policyProblem !== undefined) {
    process.stderr.write(`kv-server: ${policyProblem}\n`);
    return 2;
  }

  // Under --workers every line names the process that wrote it: the supervisor, the store owner or worker-N.
  const processName = role === 'owner' || role === 'worker' ? childName(role) : config.workers > 1 ? 'supervisor' : undefined;
  // And so does ps: the children's command lines are the supervisor's, but for the environment that gives their role.
  if (processName !== undefined && processName !== 'supervisor')
    // kv-owner, kv-worker-1...: the start of it is what top and pgrep show (the first 15 bytes).
    process.title = `kv-${processName} of kv-server pid ${process.ppid}`;
  // A child's lines carry its pid too (the supervisor's name the child, and its pid, a line is about).
  const logger =
    processName === undefined
      ? createLogger(config.logLevel)
      : createLogger(config.logLevel).child(
          processName === 'supervisor' ? { process: processName } : { process: processName, pid: process.pid },
        );
  // Said once, by the process the operator started (its --workers children have the same environment).
  const unknownVariables = role === 'single' ? unknownEnvironmentWarning(process.env) : undefined;
  if (unknownVariables !== undefined) logger.warn(unknownVariables);
  // The files are read by the process the operator started; under --workers N a worker serves with what the
  // supervisor last found good, which it sends (cluster/security-material.ts); the store owner serves no calls.
  let security: ServingSecurity | undefined;
  let goodMaterial: GoodSecurityMaterial | undefined;
  try {
    if (role === 'single') {
      const loaded = await loadServerSecurity(config, logger);
      security = loaded;
      if (config.workers > 1) {
        const { trackSecurityMaterial } = await import('./cluster/security-material');
        const good = trackSecurityMaterial(config, loaded, logger);
        goodMaterial = good;
        // The supervisor reads each file first and logs, once, what became of it; then it sends the workers
        // what was good, as one process would: a bad auth file keeps the previous roles everywhere and does
        // not hold back a good certificate.
        process.on('SIGHUP', () => {
          const { reloaded } = loaded.reload();
          if (reloaded.length === 0) return;
          const material = good.reloaded(reloaded);
          const message: ReloadMessage = { kind: 'reload', files: reloaded, material };
          for (const child of Object.values(cluster.workers ?? {})) if (child !== undefined) sendToChild(child, message);
        });
      } else {
        // SIGHUP would otherwise end the process; here it rotates certificates and reloads the auth file.
        process.on('SIGHUP', () => loaded.reload());
      }
    } else {
      // A SIGHUP to the whole process group is the supervisor's: a child hears of reloads from it.
      process.on('SIGHUP', () => undefined);
      if (role === 'worker') {
        const { securityFromSupervisor } = await import('./cluster/worker-security');
        security = await securityFromSupervisor(config, logger, childName(role), stop.signal);
      }
    }
  } catch (error) {
    if (error instanceof StopRequested) return 0;
    if (!(error instanceof TlsFileError || error instanceof AuthFileError)) throw error;
    process.stderr.write(`kv-server: ${error.message}\n`);
    return 1;
  }

  if (role === 'single' && config.workers > 1) {
    const settings = config;
    const members = new ClusterMembers(config.engine === 'file', config.workers);
    let metricsServer: MetricsServer | undefined;
    if (config.metricsListen !== undefined) {
      // Loaded only here: the metrics of every process, summed by the supervisor; up before a restore or the owner's recovery.
      const { createClusterMetrics } = await import('./cluster/cluster-metrics');
      const { source, notReady } = createClusterMetrics(members, serverVersion(), config.engine);
      metricsServer = await startMetrics(config.metricsListen, source, notReady, logger);
      if (metricsServer === undefined) return 1;
    }
    try {
      if (config.restoreFrom !== undefined) {
        const stopped = await restoreBeforeServing(config.restoreFrom, config.dataDir, logger, stop.signal);
        if (stopped !== undefined) return stopped;
      }
      const { superviseWorkers } = await import('./cluster/supervise');
      return await superviseWorkers({
        config,
        logger,
        stopRequested: stop.requested,
        announce: ({ port, httpPort, where }) => {
          process.stdout.write(readyLines(settings, port, httpPort, where));
          warnOfOpenAccess(config, logger);
          warnOfEtcdCertExpiry(config, logger);
        },
        members,
        securityMaterial: () => goodMaterial?.current() ?? {},
      });
    } finally {
      await metricsServer?.close();
    }
  }

  // Up before the store opens, so /healthz answers (and /readyz says why not) during a long recovery.
  let server: KvServer | undefined = undefined;
  let ownerStore: KeyValueStore | undefined;
  let draining = false;
  let metrics: ServerMetrics | undefined;
  let metricsServer: MetricsServer | undefined;
  /** Under --workers: sends the supervisor this process's last counts before it exits on its own (answer-reports.ts). */
  let sendLastCounts: (() => Promise<void>) | undefined;
  if (config.metricsListen !== undefined) {
    // Loaded only with --metrics-listen: prom-client takes about 25 ms to load, which every start-up would pay.
    const { createServerMetrics } = await import('./metrics/server-metrics');
    const notReady = (): string | undefined => {
      if (draining) return 'shutting down';
      // The owner serves no calls: it is ready once its store is open and takes writes.
      const opened = role === 'owner' ? ownerStore !== undefined : server !== undefined;
      if (!opened) return 'the store is opening';
      const serving = role === 'owner' ? ownerStore?.failure === undefined : server?.isServing() === true;
      return serving ? undefined : 'the store refuses writes';
    };
    if (role === 'single') {
      metrics = createServerMetrics(serverVersion(), config.engine);
      metricsServer = await startMetrics(config.metricsListen, metrics.registry, notReady, logger);
      if (metricsServer === undefined) return 1;
    } else {
      // Under --workers N the supervisor serves the port and asks each process for its metrics.
      metrics = createServerMetrics(serverVersion(), config.engine, childName(role));
      const { answerReports } = await import('./cluster/answer-reports');
      sendLastCounts = answerReports(metrics.registry, notReady);
    }
  }
  const stopMetrics = async (): Promise<void> => metricsServer?.close();

  if (config.restoreFrom !== undefined && role === 'single') {
    const stopped = await restoreBeforeServing(config.restoreFrom, config.dataDir, logger, stop.signal);
    if (stopped !== undefined) {
      await stopMetrics();
      return stopped;
    }
  }

  let store: KeyValueStore;
  let where: string;
  // A worker that loses its store owner stops serving: its calls are answered (with what became of them), then it exits 1.
  let ownerLost: (error: Error) => void = () => undefined;
  const lostOwner = new Promise<Error>((resolve) => (ownerLost = resolve));
  try {
    ({ store, where } =
      role === 'worker' && config.engine === 'file'
        ? await openWorkerStoreOfConfig(config, logger, stop.signal, ownerLost)
        : await openConfiguredStore(
            config,
            logger,
            stop.signal,
            metrics?.store.observer,
            await ownerWatcherLimits(role),
            // The store owner of --workers is stopped through its supervisor.
            role === 'owner' ? process.ppid : undefined,
          ));
  } catch (error) {
    await stopMetrics();
    if (error instanceof StopRequested) {
      // Under --workers the supervisor says it once for all.
      if (role !== 'single') return 0;
      const held = config.engine === 'file' ? ', data directory not held' : '';
      process.stderr.write(`kv-server: stopped by ${error.signal} while opening the store (nothing served${held})\n`);
      return 0;
    }
    // A locked, damaged or unusable data directory, or an etcd that does not answer, is the operator's to fix: one line, no stack.
    if (error instanceof StoreError || isSystemError(error)) {
      const why = isSystemError(error) ? inPlainWords(error, describeStoreLocation(config)) : error.message;
      // A worker on the etcd engine opens the store itself.
      sayWhyNotServing(`kv-server: cannot open the store in ${describeStoreLocation(config)}: ${why}\n`, role === 'worker');
      return 1;
    }
    throw error;
  }

  if (role === 'owner') {
    ownerStore = store;
    metrics?.store.watch(store, 'store');
    const { serveAsStoreOwner } = await import('./cluster/run-store-owner');
    await serveAsStoreOwner(store as FileStore, where, stop.requested, logger);
    return closeStore(store, logger);
  }

  // A worker's replica is the owner's store: the owner reports it, the worker the watches it holds (etcd: no owner).
  metrics?.store.watch(store, role === 'worker' && config.engine === 'file' ? 'watchers' : 'all');
  server = createServer({
    store,
    logger,
    maxKeyBytes: config.maxKeyBytes,
    maxValueBytes: config.maxValueBytes,
    credentials: security?.credentials,
    authenticate: security?.authenticate,
    reflection: config.reflection,
    connections: config, // the connection limits' fields are Config's
    calls: metrics?.calls,
    consoleAssets: config.httpListen === undefined ? undefined : readConsoleAssets(),
    httpTls: security?.tls,
  });
  let port: number;
  let httpPort: number | undefined;
  let listening = `${config.listen} (--listen)`;
  try {
    port = await server.listen(config.listen);
    if (config.httpListen !== undefined) {
      listening = `${config.httpListen} (--http-listen)`;
      httpPort = await server.listenHttp(config.httpListen);
    }
  } catch (error) {
    await server.shutdown(0);
    await store.close();
    await stopMetrics();
    sayWhyNotServing(`kv-server: cannot listen on ${listening}: ${(error as Error).message}\n`, role === 'worker');
    return 1;
  }
  if (role === 'worker') tellSupervisor({ kind: 'worker-ready', port, httpPort, where });
  else process.stdout.write(readyLines(config, port, httpPort, where));
  // Under --workers the supervisor says it, once (not once per worker and per replacement).
  if (role === 'single') {
    warnOfOpenAccess(config, logger);
    warnOfEtcdCertExpiry(config, logger);
  }

  const stopped = await Promise.race([stop.requested, lostOwner]);
  draining = true;
  if (stopped instanceof Error) {
    // An expected path (the owner died; the supervisor restarts the server): its reason, without a stack.
    logger.error({ reason: stopped.message }, 'lost the store owner: answering the calls in flight, then exiting');
    // The streams it ends are told what its store told the calls it failed (whichever reaches them first), and that
    // the supervisor starts another worker, unless it is gone too.
    const why = process.connected ? `${stopped.message}; this worker stops and the server starts another: connect again` : stopped.message;
    await server.shutdown(Math.min(config.shutdownGraceMs, OWNER_LOST_GRACE_MS), why);
    security?.flushAudit?.();
    // The calls just answered UNAVAILABLE count in the server's metrics, though no scrape will ask this process again.
    await sendLastCounts?.();
    await stopMetrics();
    return 1;
  }
  logger.info(
    { ...(stop.reason === undefined ? { signal: stopped } : { reason: stop.reason }), graceMs: config.shutdownGraceMs },
    config.shutdownGraceMs > 0 ? 'shutting down: finishing calls in flight' : 'shutting down: cancelling calls in flight (no grace period)',
  );
  await server.shutdown(config.shutdownGraceMs);
  security?.flushAudit?.();
  try {
    return await closeStore(store, logger, role === 'worker' && config.engine === 'file' ? 'stopped' : undefined);
  } finally {
    await stopMetrics();
  }
}

/**
 * Closes the store: 0, or 1 after saying why the data directory could not be
 * released. `stoppedLine`: what the log says then, if not what the store
 * makes it (a worker of the file engine holds no store, only its channel to
 * the owner).
 */
async function closeStore(store: KeyValueStore, logger: Logger, stoppedLine?: string): Promise<number> {
  try {
    await store.close();
  } catch (error) {
    if (!(error instanceof LockNotReleasedError)) throw error;
    process.stderr.write(`kv-server: stopped, but ${error.message}\n`);
    return 1;
  }
  logger.info(stoppedLine ?? (store instanceof FileStore ? 'stopped; data directory released' : 'stopped; store closed'));
  return 0;
}

/**
 * A line saying why this process cannot serve: on stderr, or, `toSupervisor`, sent to the supervisor of --workers,
 * which prints it once and fails the start (every child would fail alike) instead of starting another.
 */
function sayWhyNotServing(line: string, toSupervisor: boolean): void {
  if (toSupervisor) tellSupervisor({ kind: 'failed', line });
  else process.stderr.write(line);
}

/** Without an auth file every caller may do anything: said once the server serves (a warning off loopback). */
function warnOfOpenAccess(config: Config, logger: Logger): void {
  if (config.authFile !== undefined) return;
  const level = isLoopbackHost(hostOf(config.listen)) ? 'info' : 'warn';
  logger[level](
    config.tlsClientCa === undefined
      ? 'no --auth-file: every caller may read, write and clear every key'
      : 'no --auth-file: every client with a certificate from --tls-client-ca may read, write and clear every key',
  );
}

function hostOf(address: string): string {
  return address.slice(0, address.lastIndexOf(':'));
}

/** What the server prints once it serves: the HTTP line if any, then the gRPC line last, which says it is ready. */
function readyLines(config: Config, port: number, httpPort: number | undefined, where: string): string {
  const tls = config.tlsCert !== undefined;
  let httpLine = '';
  if (config.httpListen !== undefined && httpPort !== undefined) {
    const httpAddress = `${hostOf(config.httpListen)}:${httpPort}`;
    httpLine = `kv-server HTTP listening on ${httpAddress} (Connect and gRPC-Web; web console at ${tls ? 'https' : 'http'}://${httpAddress}/)\n`;
  }
  const workers = config.workers > 1 ? `, ${config.workers} workers` : '';
  return (
    `${httpLine}kv-server listening on ${hostOf(config.listen)}:${port} (${tls ? (config.tlsClientCa ? 'mutual TLS' : 'TLS') : 'plaintext'}, ` +
    `${config.authFile ? 'auth file' : 'no auth'}, ${where}${workers})\n`
  );
}

/** A worker's store: a replica of the owner's, which the supervisor named in the environment. */
async function openWorkerStoreOfConfig(
  config: Config,
  logger: Logger,
  signal: AbortSignal,
  onOwnerLost: (error: Error) => void,
): Promise<{ store: KeyValueStore; where: string }> {
  const { openWorkerStore } = await import('./store/remote/worker-store');
  const store = await openWorkerStore({
    socketPath: ownerSocketPath(),
    name: childName('worker'),
    signal,
    limits: { maxKeyBytes: config.maxKeyBytes, maxValueBytes: config.maxValueBytes, maxTxnOps: config.maxTxnOps },
    feed: {
      progressIntervalMs: config.watchProgressMs,
      history: { maxChanges: config.watchHistoryChanges, maxBytes: config.watchHistoryBytes },
    },
    logger,
    // Without the owner a worker can neither write nor read: it exits, and the supervisor starts another
    // (and, if the owner itself ended, the whole server).
    onOwnerLost,
  });
  return { store, where: 'a worker' };
}

/** The store owner's watches feed its workers: they must take every change, whatever the history window keeps. */
async function ownerWatcherLimits(role: ProcessRole): Promise<{ maxQueueBytes: number } | undefined> {
  if (role !== 'owner') return undefined;
  const { OWNER_WATCHER_LIMITS } = await import('./store/remote/serve-store-owner');
  return OWNER_WATCHER_LIMITS;
}

function definedOnly<T extends object>(values: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(values).filter(([, value]) => value !== undefined)) as {
    [K in keyof T]: Exclude<T[K], undefined>;
  };
}

/** kv-server's version: package.json is one level above both src/ and dist/. */
function serverVersion(): string {
  return (JSON.parse(readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { version: string }).version;
}

/**
 * The metrics listener, its address printed on stdout (like the ready line) so a port 0 can be found;
 * undefined after saying in one line why it cannot listen.
 */
async function startMetrics(
  address: string,
  registry: MetricsSource,
  notReady: () => string | undefined | Promise<string | undefined>,
  logger: Logger,
): Promise<MetricsServer | undefined> {
  // Loaded only with --metrics-listen, as prom-client (./metrics/server-metrics) is.
  const { startMetricsServer } = await import('./metrics/metrics-server');
  let server: MetricsServer;
  try {
    server = await startMetricsServer(address, { registry, notReady, logger });
  } catch (error) {
    process.stderr.write(`kv-server: cannot serve metrics on ${address}: ${(error as Error).message}\n`);
    return undefined;
  }
  const host = address.slice(0, address.lastIndexOf(':'));
  process.stdout.write(`kv-server metrics on http://${host}:${server.port}/metrics (also /healthz, /readyz)\n`);
  if (!isLoopbackHost(host))
    logger.warn(
      { address },
      'metrics are served in plain HTTP beyond loopback, to anyone who reaches the address (they show no keys, values or credentials, but counts and call rates): keep it to your scraper',
    );
  return server;
}

/** --restore-from: builds the data directory from a backup; undefined once restored, else the exit code after saying in one line why not (0: a signal stopped it). */
async function restoreBeforeServing(file: string, dataDir: string, logger: Logger, signal: AbortSignal): Promise<number | undefined> {
  // Loaded only with --restore-from: the backup reader comes with the SDK (@kv/client), which the server needs for nothing else.
  const [{ restoreDataDir, RestoreTargetError }, { KvError }] = await Promise.all([
    import('./restore/restore-data-dir'),
    import('@kv/client'),
  ]);
  let lastReport = 0;
  try {
    const summary = await restoreDataDir(file, dataDir, {
      logger,
      signal,
      onProgress: (phase, { keys, keyCount }) => {
        if (Date.now() - lastReport < 1000) return;
        lastReport = Date.now();
        logger.info({ phase, keys, keyCount }, `restoring from ${file}`);
      },
    });
    logger.info({ file, dataDir: path.resolve(dataDir), revision: summary.revision, keys: summary.keyCount }, 'restored from the backup');
    return undefined;
  } catch (error) {
    // A damaged or missing backup file (KvError, as the SDK's reader reports it) or a directory in the way.
    if (error instanceof RestoreTargetError || error instanceof KvError) {
      process.stderr.write(`kv-server: --restore-from: ${error.message}; nothing was restored\n`);
      return 1;
    }
    if (signal.aborted && error === signal.reason && error instanceof StopRequested) {
      process.stderr.write(`kv-server: stopped by ${error.signal} while restoring from ${file} (nothing was restored, nothing served)\n`);
      return 0;
    }
    // The directory cannot be made or written (ENOTDIR, EACCES, ENOSPC, EROFS...): what was written is removed again.
    if (isSystemError(error)) {
      process.stderr.write(
        `kv-server: --restore-from: cannot restore into ${path.resolve(dataDir)}: ${error.message}; nothing was restored\n`,
      );
      return 1;
    }
    throw error;
  }
}

/** `signal` aborts what the server is doing and `requested` resolves once a stop is asked for. */
interface StopListener {
  signal: AbortSignal;
  requested: Promise<NodeJS.Signals>;
  /** Why the server stops when no signal asked for it (under --workers: the supervisor gave up, or is gone). */
  reason?: string;
}

/** Why the store's opening was aborted: a signal asked the server to stop. */
class StopRequested extends Error {
  constructor(readonly signal: NodeJS.Signals) {
    super(`stopped by ${signal}`);
  }
}

/**
 * SIGTERM and SIGINT ask for a stop: `signal` aborts (ending a recovery in
 * progress) and `requested` resolves. A second signal means "now": exit 1 at
 * once, saying so and what that leaves of the data (`forced.dataNote`); under
 * --workers the workers and the store owner are killed first, so that every
 * process stops now.
 * Under `npm start`, Ctrl-C arrives twice at once (from the terminal, and
 * forwarded by npm): a repeat within a second is that echo, not impatience.
 */
function listenForStop(forced: { dataNote: string }): StopListener {
  const controller = new AbortController();
  let firstAt = 0;
  let resolve: (signal: NodeJS.Signals) => void = () => undefined;
  const requested = new Promise<NodeJS.Signals>((r) => (resolve = r));
  const onSignal = (signal: NodeJS.Signals): void => {
    if (!controller.signal.aborted) {
      firstAt = Date.now();
      controller.abort(new StopRequested(signal));
      resolve(signal);
    } else if (Date.now() - firstAt > 1000) {
      process.stderr.write(
        `kv-server: ${signal} again: stopping now, without the drain: calls in flight are cut off ` +
          `(a write among them may or may not have been applied); ${forced.dataNote}\n`,
      );
      for (const child of Object.values(cluster.workers ?? {})) child?.process.kill('SIGKILL');
      process.exit(1);
    }
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return { signal: controller.signal, requested };
}

/**
 * What a stop by a second signal leaves of the data: no acknowledged write is lost, whatever the engine and fsync
 * mode. One process removes the directory's lock as it exits (proper-lockfile's exit hook); under --workers the
 * store owner that holds it is killed, so it stays (its owner is gone: the next start takes it over at once).
 */
function whatAForcedStopKeeps(config: Config): string {
  if (config.engine === 'etcd') return 'every acknowledged write is in etcd';
  const lock =
    config.workers > 1
      ? "the store owner is killed, so the data directory's lock is left behind, and the next start takes it over"
      : "the data directory's lock is removed as the process exits";
  if (config.fsync === 'always') return `every acknowledged write is on disk (--fsync always); ${lock}`;
  return (
    `every acknowledged write was handed to the operating system and survives this exit ` +
    `(--fsync ${config.fsync}: only a crash of the machine before it reaches the disk loses it); ${lock}`
  );
}

/**
 * Under the supervisor: its 'stop' message (or its end) asks for the stop; signals from outside are the supervisor's
 * to act on. `reason`, once the stop is asked for, if no signal asked for it: what the log names instead.
 */
function listenForSupervisorStop(): StopListener {
  const controller = new AbortController();
  let resolve: (signal: NodeJS.Signals) => void = () => undefined;
  const requested = new Promise<NodeJS.Signals>((r) => (resolve = r));
  const listener: StopListener = { signal: controller.signal, requested };
  const onStop = (signal: NodeJS.Signals, reason?: string): void => {
    if (controller.signal.aborted) return;
    listener.reason = reason;
    controller.abort(new StopRequested(signal));
    resolve(signal);
  };
  /** The supervisor has begun the server's stop (StoppingNotice): this process's own SIGTERM came with it. */
  let serverStopping = false;
  process.on('message', (message: unknown) => {
    const stop = message as Partial<StopMessage | StoppingNotice> | null;
    if (stop?.kind === 'stopping') serverStopping = true;
    if (stop?.kind !== 'stop') return;
    onStop(stop.signal === 'SIGINT' ? 'SIGINT' : 'SIGTERM', typeof stop.reason === 'string' ? stop.reason : undefined);
  });
  // The supervisor is gone: stop as it would have asked. (Node's cluster module ends a child at once, exit 0 with
  // nothing logged and its store not closed, when the supervisor goes without asking; marked as asked, it does not.)
  const worker = cluster.worker;
  worker?.once('disconnect', () => {
    if (!worker.exitedAfterDisconnect) worker.exitedAfterDisconnect = true;
  });
  process.on('disconnect', () => onStop('SIGTERM', 'the supervisor is gone'));
  // SIGTERM sent to this process alone (its pid, read from a lock's message or ps) stops nothing: said so, unless the
  // supervisor asks for the stop just after (systemd signals every process of the unit at once; a Ctrl-C, the group).
  process.on('SIGTERM', () => {
    setTimeout(() => {
      if (controller.signal.aborted || serverStopping) return;
      process.stderr.write(
        `kv-server: SIGTERM to pid ${process.pid} ignored: it is one process of kv-server --workers; signal the supervisor, pid ${process.ppid}, to stop the server\n`,
      );
    }, IGNORED_SIGNAL_SAY_MS).unref();
  });
  process.on('SIGINT', () => undefined);
  return listener;
}

/**
 * A system error the operator can act on, said in plain words first and what to do after; the system's own
 * message (which names the file) in between. Others are their message as is.
 */
function inPlainWords(error: NodeJS.ErrnoException, dataDir: string): string {
  const uid = process.getuid?.();
  switch (error.code) {
    case 'ENOSPC':
      return `the disk is full (${error.message}): free space on it, then start the server again`;
    case 'EDQUOT':
      return `the disk quota is used up (${error.message}): free space or raise the quota, then start the server again`;
    case 'EROFS':
      return `the file system is read-only (${error.message}): remount it read-write, or give another --data-dir`;
    case 'EACCES':
    case 'EPERM':
      return `not permitted (${error.message}): the user this server runs as${uid === undefined ? '' : ` (uid ${uid})`} must be able to read and write ${dataDir}, and its files must not be immutable (chattr +i)`;
    default:
      return error.message;
  }
}

/** An error from the operating system (ENOTDIR, EACCES, ENOSPC...), as opposed to a bug. */
function isSystemError(error: unknown): error is NodeJS.ErrnoException {
  return (
    error instanceof Error &&
    typeof (error as NodeJS.ErrnoException).code === 'string' &&
    typeof (error as NodeJS.ErrnoException).syscall === 'string'
  );
}

/**
 * Ends the process with `code` once its event loop has drained, by process.exit. Left to end by itself, Node
 * tears the process down after the 'exit' event, and closing the signal handlers gives SIGTERM and SIGINT back
 * their default action for the last milliseconds: a second signal landing then (a supervisor repeating its
 * SIGTERM, a second Ctrl-C) killed the server by the signal instead of the exit code it had (docs/operations.md).
 * process.exit ends it with the handlers still in place, which then ignore any signal.
 */
function exitOnceDrained(code: number): void {
  process.once('beforeExit', () => process.exit(code));
}

ignoreStderrWriteErrors();
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Under the supervisor the IPC channel is the last handle: it must not keep a stopped child alive.
    process.channel?.unref();
    // Everything is closed by now; if some handle still holds the loop open, do not hang a deploy over it.
    setTimeout(() => process.exit(code), 2000).unref();
    exitOnceDrained(code);
  },
  (error: unknown) => {
    const why = error instanceof Error ? (error.stack ?? error.message) : String(error);
    sayWhyNotServing(`kv-server: unexpected failure: ${why}\n`, cluster.isWorker);
    process.exitCode = 1;
    // The IPC channel must not keep a failed child alive, nor anything else a failed start left open.
    process.channel?.unref();
    setTimeout(() => process.exit(1), 2000).unref();
    exitOnceDrained(1);
  },
);

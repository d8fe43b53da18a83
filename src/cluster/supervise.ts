/**
 * kv-server --workers N (N > 1): the process the operator started becomes
 * the supervisor. It starts the store owner (it alone opens the data
 * directory), then N workers (Node's cluster: they share the gRPC port, the
 * supervisor handing out connections round-robin), and says the server is
 * listening once every worker serves.
 *
 * Crashes: a worker that dies is replaced (its clients reconnect, to any
 * worker), on the ports the server announced (see `pinned`, port 0 included);
 * an owner that dies takes the whole server with it: every worker
 * is stopped, the owner restarted (recovering the data directory as after
 * any crash: no acknowledged write is lost) and the workers after it.
 * Restarting more than MAX_RESTARTS times in RESTART_WINDOW_MS gives up:
 * the children are stopped (their log names the give-up), then one line on
 * stderr and exit 1. SIGTERM/SIGINT: the workers drain as a single server
 * does, then the owner closes the store; the exit code is the owner's.
 */
import { randomBytes } from 'node:crypto';
import cluster, { type Worker } from 'node:cluster';
import os from 'node:os';
import path from 'node:path';
import type { Config } from '../config';
import type { Logger } from '../logger';
import { MAX_TIMER_MS } from '../max-timer';
import { closeConnectionsUnclaimedBy } from './close-unclaimed-connections';
import type { ClusterMembers } from './cluster-members';
import type { SecurityMaterial } from './security-material';
import {
  type ChildMessage,
  type SecurityAnswer,
  type StopMessage,
  type WorkerAddresses,
  OWNER_LOST_GRACE_MS,
  OWNER_NAME,
  isChildMessage,
  isSecurityRequest,
  ownerEnv,
  sendToChild,
  workerEnv,
  workerName,
} from './process-role';

const MAX_RESTARTS = 5;
const RESTART_WINDOW_MS = 60_000;
/** Beyond its grace period, how long a draining child may take before it is killed. */
const STOP_SLACK_MS = 5_000;
/**
 * The store owner is asked to stop once the workers have ended, within what
 * is left of the same grace and slack, but with at least this long to close
 * the store: two children stopped one after the other must not take twice
 * the grace (a unit's TimeoutStopSec would kill the server first).
 */
const OWNER_CLOSE_MS = 2_000;
/** How often a child that has not ended is told to stop again. */
const STOP_REPEAT_MS = 250;
/**
 * How long a replacement waits for one started before it to show where it listens (see replacementAddresses).
 * A bound, so that one that hangs as it starts (stopped, or stuck) does not hold up the replacement of the others.
 */
const STARTING_WAIT_MS = 5_000;
/**
 * After an owner crash, how long the workers have to answer the calls they hold and exit by themselves (they see the
 * owner gone at once, and give their calls OWNER_LOST_GRACE_MS) before they are killed: killed at once, their
 * clients got a dropped connection instead of what became of each call.
 */
const OWNER_LOST_EXIT_MS = OWNER_LOST_GRACE_MS + 2_000;

export interface ServingAddresses {
  port: number;
  httpPort: number | undefined;
  where: string;
}

export interface SuperviseOptions {
  config: Config;
  logger: Logger;
  /** Resolves with the signal that asked the server to stop. */
  stopRequested: Promise<NodeJS.Signals>;
  /** Prints the ready lines: called once, when every worker serves. */
  announce: (serving: ServingAddresses) => void;
  /** Kept current with which children serve and what the server is doing (the metrics listener reads it). */
  members: ClusterMembers;
  /** The TLS and auth material last found good: a worker asks for it as it starts, and serves with it. */
  securityMaterial: () => SecurityMaterial;
}

type Ready<K extends ChildMessage['kind']> = Extract<ChildMessage, { kind: K }>;
type Started<K extends ChildMessage['kind']> = { ready: Ready<K> } | { exitCode: number } | { stop: true };

export async function superviseWorkers({
  config,
  logger,
  stopRequested,
  announce,
  members,
  securityMaterial,
}: SuperviseOptions): Promise<number> {
  const socketPath = config.engine === 'file' ? ownerSocketName() : undefined;
  let stopping = false;
  let serving = false;
  let owner: Worker | undefined;
  const workers = new Set<Worker>();
  /**
   * The addresses workers listen on. As configured at first ({}), port 0 included: workers share a port only if
   * they all ask for the same address (Node's cluster primary keys the shared socket by it), so a worker that
   * replaces one of them asks for the configured address too and joins the socket the others hold. But the
   * primary closes that socket when its last worker leaves: then a listen on port 0 would get a new port, not
   * the one announced. So once no worker holds it (every worker died at once, or the owner did), workers listen
   * on the bound ports themselves (`bound`), from then on.
   */
  let pinned: Partial<WorkerAddresses> = {};
  /** The addresses the ready line announced, with the ports the first generation bound; and those ports. */
  let bound: Partial<WorkerAddresses> = {};
  let boundPorts: { port: number; httpPort: number | undefined } | undefined;
  /** Workers that listen as configured (not pinned) and serve on the bound ports: while one runs, so does the shared socket. */
  const sharing = new Set<Worker>();
  /** Replacements started as configured, each until it serves on the bound ports or has ended (one on other ports is killed). */
  const starting = new Map<Worker, Promise<unknown>>();
  /** Workers killed for having got a new port, and started again: not a crash (no warning, not counted as a restart). */
  const misplaced = new WeakSet<Worker>();
  /** Counts the owner's restarts: a replacement decided before one is not started after it. */
  let generation = 0;
  /** Children that said they serve, and those that said why they cannot start (a 'failed' line). */
  const saidReady = new WeakSet<Worker>();
  const saidWhy = new WeakSet<Worker>();
  /** Workers of the generation being started that ended after they said they serve, before all of them did: replaced once it serves. */
  const endedWhileStarting = new Map<number, { pid: number | undefined; code: number | null; signal: string | null }>();
  const restarts: number[] = [];
  let giveUp: (code: number) => void = () => undefined;
  const gaveUp = new Promise<number>((resolve) => (giveUp = resolve));
  /** Why the supervisor gave up restarting (what the children's stop and the stderr line say), once it has. */
  let gaveUpBecause: { what: string; ends: number } | undefined;
  let stopSignal: NodeJS.Signals | undefined;
  /** How the owner ended if it ended during a stop (stopAll reads it only while it has not asked the owner yet). */
  let ownerEndedEarly: { code: number | null; signal: string | null } | undefined;
  /** Whether the current owner ended while starting, with an error of its own (a data directory it could not open). */
  let ownerFailedToStart = false;
  /** Each child's name in the log (owner, worker-N). */
  const names = new Map<Worker, string>();
  const stopped = stopRequested.then((signal) => {
    stopping = true;
    members.phase = 'stopping';
    stopSignal = signal;
    // Said here once, whatever the children are doing: starting, restarting after the owner ended, or serving.
    logger.info({ signal }, 'shutting down: the workers drain, then the store owner closes the store');
    return { stop: true } as const;
  });

  const allowRestart = (what: string): boolean => {
    const now = Date.now();
    while (restarts.length > 0 && restarts[0] < now - RESTART_WINDOW_MS) restarts.shift();
    restarts.push(now);
    if (restarts.length <= MAX_RESTARTS) return true;
    logger.error({ restarts: restarts.length, windowMs: RESTART_WINDOW_MS }, `${what} keeps failing: giving up`);
    gaveUpBecause ??= { what, ends: restarts.length };
    return false;
  };

  /** `slot`: 1 to N; a replacement takes the slot of the worker it replaces. */
  const forkWorker = (slot: number, addresses: Partial<WorkerAddresses> = pinned): Worker => {
    const worker = cluster.fork(workerEnv(slot, socketPath, addresses));
    closeConnectionsUnclaimedBy(worker);
    workers.add(worker);
    tracked(worker, workerName(slot), 'worker-ready');
    // The primary has removed it from the shared socket by the time its channel closes.
    worker.once('disconnect', () => sharing.delete(worker));
    worker.once('exit', (code, signal) => {
      workers.delete(worker);
      if (stopping) return;
      if (!serving) {
        // One that ended before it served is started again by startWorker.
        if (saidReady.has(worker)) endedWhileStarting.set(slot, { pid: worker.process.pid, code, signal });
        return;
      }
      if (!misplaced.has(worker)) {
        logger.warn({ child: workerName(slot), pid: worker.process.pid, code, signal }, 'a worker process ended: starting another');
        if (!allowRestart('a worker')) return giveUp(1);
      }
      void replaceWorker(slot);
    });
    return worker;
  };

  const replaceWorker = async (slot: number): Promise<void> => {
    const since = generation;
    const addresses = await replacementAddresses();
    // Stopped, or the owner died meanwhile (restartAll starts every worker).
    if (stopping || !serving || generation !== since) return;
    const replacement = forkWorker(slot, addresses);
    const settled = readyOf(replacement, 'worker-ready').then(async (started) => {
      if (!('ready' in started)) return;
      const { port, httpPort } = started.ready;
      if (port === boundPorts?.port && httpPort === boundPorts.httpPort) {
        if (addresses !== bound) sharing.add(replacement);
        logger.info({ child: workerName(slot), pid: replacement.process.pid }, 'worker restarted');
        return;
      }
      if (stopping || !serving || generation !== since) return;
      // It asked after the shared socket had closed (its last worker ended just then): the bound ports from now on.
      logger.info(
        { pid: replacement.process.pid, port, httpPort, announced: boundPorts },
        'every worker on the announced ports had ended, so a new worker got other ports: starting it again on the announced ones',
      );
      pinned = bound;
      misplaced.add(replacement);
      await killed(replacement);
    });
    if (addresses === bound) return;
    starting.set(
      replacement,
      settled.finally(() => starting.delete(replacement)),
    );
  };

  /**
   * Where a replacement listens: as configured while a worker of the shared socket runs (it joins that socket,
   * on the announced ports); else, once each of them has left it, on the bound ports.
   */
  const replacementAddresses = async (): Promise<Partial<WorkerAddresses>> => {
    // One still starting as configured may yet join the shared socket (and keep it) or find it closed: wait to see
    // which (one that found it closed is killed, and waited for: it may hold the bound gRPC port and not the HTTP one).
    // Not for ever: one that hangs as it starts has not joined the socket, and if it joins later, as configured, when
    // the socket has closed, it gets other ports and is started again on the bound ones like any other.
    const waitedEnough = new Promise<void>((resolve) => setTimeout(resolve, STARTING_WAIT_MS).unref());
    const settleStarting = async (): Promise<void> => {
      while (starting.size > 0) {
        if ((await Promise.race([Promise.race(starting.values()).then(() => false), waitedEnough.then(() => true)])) === true) return;
      }
    };
    await settleStarting();
    if (pinned === bound) return bound;
    // Workers killed together end in one turn of the event loop: look once every end of this turn is known.
    await new Promise((resolve) => setImmediate(resolve));
    await settleStarting();
    if (pinned === bound) return bound;
    if ([...sharing].some((worker) => !worker.isDead())) return pinned;
    await Promise.all([...sharing].map((worker) => disconnected(worker)));
    pinned = bound;
    return bound;
  };

  const forkOwner = (): Worker => {
    const child = cluster.fork(ownerEnv(socketPath as string));
    owner = child;
    ownerFailedToStart = false;
    tracked(child, OWNER_NAME, 'owner-ready');
    child.once('exit', (code, signal) => {
      // Ended during the stop (a crash while the workers drain, before it is asked to stop): the exit code says so.
      if (stopping) ownerEndedEarly = { code, signal };
      // Failed as it started, just before a stop (its exit heard after the stop began): the stop must not make it a clean one.
      else if (!serving && child === owner && code !== 0 && signal === null) ownerFailedToStart = true;
      // Before it said it serves, its start fails (startOwner starts another if it did not say why); after, a
      // crash, though the workers of its generation may still be starting.
      if (stopping || (!serving && !saidReady.has(child)) || child !== owner) return;
      logger.error(
        { child: OWNER_NAME, pid: child.process.pid, code, signal },
        'the store owner process ended: restarting the whole server',
      );
      serving = false;
      members.phase = 'starting';
      if (!allowRestart('the store owner')) return giveUp(1);
      void restartAll().then((code) => {
        if (code !== undefined) giveUp(code);
      });
    });
    return child;
  };

  /** Lines children sent about why they cannot start (every worker fails alike when the port is taken): each printed once. */
  const said = new Set<string>();
  /** When the last of those was printed (Date.now()). */
  let lastSaidAt = Number.NEGATIVE_INFINITY;
  /** Tells `members` when `child` serves, and when it ends. */
  const tracked = (child: Worker, name: string, kind: ChildMessage['kind']): void => {
    names.set(child, name);
    const onMessage = (message: unknown): void => {
      if (isSecurityRequest(message)) {
        const answer: SecurityAnswer = { kind: 'security', material: securityMaterial() };
        sendToChild(child, answer);
      }
      if (!isChildMessage(message)) return;
      if (message.kind === kind) {
        saidReady.add(child);
        members.ready(name, child);
      }
      if (message.kind === 'failed') saidWhy.add(child);
      if (message.kind === 'failed' && !said.has(message.line)) {
        said.add(message.line);
        lastSaidAt = Date.now();
        process.stderr.write(message.line);
      }
    };
    child.on('message', onMessage);
    child.once('exit', () => {
      child.off('message', onMessage);
      members.ended(name, child);
      names.delete(child);
    });
  };

  /**
   * Starts the worker of `slot` and resolves once it serves. One that ends first without saying why (killed, out of
   * memory) is started again, as a worker that ends later is, within the same restart limit; one that says why it
   * cannot start (a port taken) fails the start, as every worker would.
   */
  const startWorker = async (slot: number): Promise<Started<'worker-ready'>> => {
    const since = generation;
    for (;;) {
      const worker = forkWorker(slot);
      const started = await readyOf(worker, 'worker-ready');
      // A newer generation (its owner crashed as this one started) starts workers of its own.
      if ('ready' in started || stopping || saidWhy.has(worker) || generation !== since) return started;
      logger.warn(
        { child: workerName(slot), pid: worker.process.pid, code: worker.process.exitCode, signal: worker.process.signalCode },
        'a worker process ended before it served: starting another',
      );
      if (!allowRestart('a worker')) return started;
    }
  };

  /**
   * Starts the owner and resolves once it serves. One that ends first without saying why (killed, out of memory: in
   * the checkpoint that often follows a recovery, say) is started again within the restart limit, as a worker is;
   * one that says why it cannot start (a data directory it cannot open) fails the start. Workers that started
   * meanwhile keep trying the owner's socket until the new one listens.
   */
  const startOwner = async (): Promise<Started<'owner-ready'>> => {
    const since = generation;
    for (;;) {
      const child = forkOwner();
      const started = await readyOf(child, 'owner-ready');
      if ('ready' in started || stopping || saidWhy.has(child) || generation !== since) return started;
      logger.warn(
        { child: OWNER_NAME, pid: child.process.pid, code: child.process.exitCode, signal: child.process.signalCode },
        'the store owner process ended before it served: starting another',
      );
      if (!allowRestart('the store owner')) return started;
    }
  };

  /**
   * Starts the owner and the workers at once (a worker loads its code while
   * the owner recovers the data directory, then connects); an exit code if
   * one of them cannot start.
   */
  const startAll = async (): Promise<number | undefined> => {
    const since = generation;
    endedWhileStarting.clear();
    const ownerStarted = socketPath === undefined ? undefined : startOwner();
    // Without an owner (the etcd engine) each worker opens the store itself: the first alone, so a store
    // that cannot be opened is reported once, not by every worker.
    const firstAlone = ownerStarted === undefined ? await Promise.race([startWorker(1), stopped]) : undefined;
    if (firstAlone !== undefined && !('ready' in firstAlone)) return 'exitCode' in firstAlone ? exitCodeOf(firstAlone.exitCode) : 0;
    const started = firstAlone === undefined ? 0 : 1;
    const workersStarted = Promise.all([
      ...(firstAlone === undefined ? [] : [Promise.resolve(firstAlone)]),
      ...Array.from({ length: config.workers - started }, (_, i) => startWorker(started + i + 1)),
    ]);
    let where = '';
    if (ownerStarted !== undefined) {
      const started = await Promise.race([ownerStarted, stopped]);
      if (!('ready' in started)) return 'exitCode' in started ? exitCodeOf(started.exitCode) : 0;
      where = started.ready.where;
    }
    const all = await Promise.race([workersStarted, stopped]);
    if (!Array.isArray(all)) return 0;
    // Its owner ended after it said it serves, before the workers did: the restart that began then carries on.
    if (generation !== since) return undefined;
    const failed = all.find((started) => !('ready' in started));
    if (failed !== undefined) return 'exitCode' in failed ? exitCodeOf(failed.exitCode) : 0;
    // The ports of one that still runs: one that served and ended before the others did may have held a shared
    // socket that closed with it (a port-0 listen then gave the next worker another port).
    const readies = all as Array<{ ready: Ready<'worker-ready'> }>;
    // readies[i] is slot i + 1's.
    const first = (readies.find((_, i) => !endedWhileStarting.has(i + 1)) ?? readies[0]).ready;
    if (stopping) return 0;
    const host = (address: string): string => address.slice(0, address.lastIndexOf(':'));
    // Pinned to these only once no worker holds the shared socket (see `pinned`).
    if (pinned !== bound) {
      bound = {
        listen: `${host(config.listen)}:${first.port}`,
        httpListen: config.httpListen === undefined ? undefined : `${host(config.httpListen)}:${first.httpPort}`,
      };
      boundPorts = { port: first.port, httpPort: first.httpPort };
      for (const worker of workers) sharing.add(worker);
    }
    serving = true;
    members.phase = 'serving';
    // Said to serve, then ended before the rest of its generation did: replaced now, as any worker that ends.
    for (const [slot, ended] of endedWhileStarting) {
      logger.warn({ child: workerName(slot), ...ended }, 'a worker process ended: starting another');
      if (!allowRestart('a worker')) {
        giveUp(1);
        break;
      }
      void replaceWorker(slot);
    }
    endedWhileStarting.clear();
    return addressesReady({ port: first.port, httpPort: first.httpPort, where: socketPath === undefined ? first.where : where });
  };

  let announced = false;
  const addressesReady = (addresses: ServingAddresses): undefined => {
    if (!announced) announce(addresses);
    announced = true;
    return undefined;
  };

  /** After an owner crash: the workers cannot serve without it. */
  const restartAll = async (): Promise<number | undefined> => {
    generation += 1;
    // Every worker gone from the shared socket, so the primary has closed it: the new ones listen on the bound ports.
    await Promise.all(
      [...workers, ...sharing].map((worker) =>
        endedOrKilled(worker, OWNER_LOST_EXIT_MS, () =>
          logger.warn(
            { child: names.get(worker), pid: worker.process.pid, waitedMs: OWNER_LOST_EXIT_MS },
            'a worker did not exit after its store owner ended: killed',
          ),
        ),
      ),
    );
    // Stopped meanwhile: stopAll has already looked at the children, so a generation forked now would run on unstopped.
    if (stopping) return undefined;
    pinned = bound;
    return startAll();
  };

  const stopAll = async (): Promise<number> => {
    stopping = true;
    members.phase = 'stopping';
    // Capped: a longer timer would fire at once and kill every child without its drain.
    const graceMs = Math.min(config.shutdownGraceMs + STOP_SLACK_MS, MAX_TIMER_MS);
    const message: StopMessage = { kind: 'stop', signal: stopSignal ?? 'SIGTERM' };
    // Given up, not asked by a signal: the children's log says so instead of naming a signal nobody sent.
    if (stopSignal === undefined && gaveUpBecause !== undefined) {
      message.reason = `the supervisor gave up: ${gaveUpBecause.what} keeps failing`;
    }
    if (owner !== undefined && !owner.isDead()) sendToChild(owner, { kind: 'stopping' });
    const startedAt = Date.now();
    let ownerKilled = false;
    const stop = (child: Worker, allowedMs: number): Promise<number> =>
      stopChild(child, allowedMs, message, (pid) => {
        if (child === owner) ownerKilled = true;
        logger.warn(
          { child: names.get(child), pid, graceMs: config.shutdownGraceMs, slackMs: STOP_SLACK_MS, allowedMs },
          'a child process did not stop within the grace period (and 5 s more): killed',
        );
      });
    await Promise.all([...workers].map((worker) => stop(worker, graceMs)));
    if (owner === undefined || owner.isDead()) {
      // Ended before it was asked to: during the stop (a crash while the workers drain), or as it started (it could not
      // open the data directory, and said so itself, as the stop came): the exit code says so.
      if (ownerEndedEarly !== undefined) {
        logger.error(ownerEndedEarly, 'the store owner process ended during the stop before it was asked to: exit 1');
        return 1;
      }
      return ownerFailedToStart ? 1 : 0;
    }
    const code = exitCodeOf(await stop(owner, Math.max(OWNER_CLOSE_MS, graceMs - (Date.now() - startedAt))));
    if (ownerKilled) {
      process.stderr.write(
        `kv-server: the store owner did not close the store within the grace period (--shutdown-grace-ms ${config.shutdownGraceMs}, ` +
          `and 5 s more): killed, exit 1; no acknowledged write is lost, and the next start takes over the data directory's lock\n`,
      );
    }
    return code;
  };

  // Said once on stderr, as every other exit 1 is; unless a child's own line (a port taken) said why they fail, within
  // the restart window (one said long before, by a worker that failed once and was replaced, is not why).
  const sayGaveUp = (): void => {
    if (gaveUpBecause === undefined || Date.now() - lastSaidAt <= RESTART_WINDOW_MS) return;
    const { what, ends } = gaveUpBecause;
    process.stderr.write(
      `kv-server: ${what} keeps failing (${ends} processes ended within ${RESTART_WINDOW_MS / 1000} s, ${MAX_RESTARTS} restarts ` +
        `allowed): gave up and stopped the server; the log says how each ended\n`,
    );
  };

  const startedOrNot = await startAll();
  if (startedOrNot !== undefined) {
    // Stopped while starting (0): unless the stop met a child that had failed (the owner could not open the store).
    const stoppedCode = await stopAll();
    const started = startedOrNot === 0 ? stoppedCode : startedOrNot;
    if (stopSignal !== undefined && started === 0) {
      const held = config.engine === 'file' ? ', data directory not held' : '';
      process.stderr.write(`kv-server: stopped by ${stopSignal} while starting (nothing served${held})\n`);
    }
    if (stopSignal === undefined) sayGaveUp();
    return started;
  }
  const outcome = await Promise.race([stopped, gaveUp]);
  const code = await stopAll();
  if (typeof outcome !== 'number') return code;
  sayGaveUp();
  return outcome;
}

/**
 * Where the owner listens for its workers: on Linux an abstract unix socket
 * (no file, so a server killed with SIGKILL leaves nothing behind), elsewhere
 * a socket file in the temporary directory.
 */
function ownerSocketName(): string {
  const name = `kv-owner-${process.pid}-${randomBytes(4).toString('hex')}`;
  return process.platform === 'linux' ? `\0${name}` : path.join(os.tmpdir(), `${name}.sock`);
}

/** The child's ready message, or its exit code if it ended first. */
function readyOf<K extends ChildMessage['kind']>(child: Worker, kind: K): Promise<Started<K>> {
  return new Promise((resolve) => {
    const onMessage = (message: unknown): void => {
      if (isChildMessage(message) && message.kind === kind) {
        child.off('message', onMessage);
        resolve({ ready: message as Ready<K> });
      }
    };
    child.on('message', onMessage);
    child.once('exit', (code) => {
      child.off('message', onMessage);
      const ended = (): void => resolve({ exitCode: code ?? 1 });
      // Its last messages (why it failed) are read before its channel closes.
      if (child.isConnected()) child.once('disconnect', ended);
      else ended();
    });
  });
}

/** Asks a child to drain and exit; kills it if it takes longer than `graceMs`. Resolves with its exit code. */
function stopChild(child: Worker, graceMs: number, stop: StopMessage, onKill: (pid: number | undefined) => void): Promise<number> {
  if (child.isDead()) return Promise.resolve(child.process.exitCode ?? 1);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      onKill(child.process.pid);
      child.process.kill('SIGKILL');
    }, graceMs);
    // A child forked just before the stop may still be loading its code, not yet listening: a message then is lost,
    // and it would start and serve on (or wait for an owner that is gone) until killed after the grace. So the stop
    // is said again until it ends; a child that heard it already takes no notice.
    const again = setInterval(() => sendToChild(child, stop), STOP_REPEAT_MS);
    child.once('exit', (code) => {
      clearTimeout(timer);
      clearInterval(again);
      resolve(code ?? 1);
    });
    if (child.isConnected()) sendToChild(child, stop);
    else child.process.kill('SIGKILL');
  });
}

/** Kills a child; resolves once it has ended and its channel is closed (Node's cluster primary has then let go of its sockets). */
function killed(child: Worker): Promise<void> {
  return endedOrKilled(child, 0, () => undefined);
}

/** Waits up to `ms` for the child to exit by itself, then kills it (telling `onKill` first); resolves once it is gone. */
async function endedOrKilled(child: Worker, ms: number, onKill: () => void): Promise<void> {
  if (!child.isDead()) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        onKill();
        child.process.kill('SIGKILL');
      }, ms);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
  await disconnected(child);
}

/** Resolves once the child's IPC channel is closed. */
function disconnected(child: Worker): Promise<void> {
  if (!child.isConnected()) return Promise.resolve();
  return new Promise((resolve) => child.once('disconnect', () => resolve()));
}

/** A child that could not start has said why on stderr; the server exits 1 (0 only if it was asked to stop). */
function exitCodeOf(code: number): number {
  return code === 0 ? 0 : 1;
}

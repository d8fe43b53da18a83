/**
 * The store owner's side of the worker channel: a unix socket on which each
 * worker process connects once. Calls run on the owner's store (already
 * validated by the worker); the replica each worker reads from is fed by one
 * watch on every key (owner-protocol.ts describes the bootstrap).
 */
import fs from 'node:fs';
import net from 'node:net';
import type { Logger } from '../../logger';
import type { AbstractKeyValueStore } from '../abstract-key-value-store';
import type { StoredEntry } from '../change';
import { StoreClosedError } from '../errors';
import type { KeyValueStore, Watch } from '../key-value-store';
import { encodeWatchBatch, ownerChannel } from './owner-codec';
import { type WorkerMessage, toWireError } from './owner-protocol';

/** Entries per bootstrap frame: bounds the memory of one frame on both sides. */
const BOOTSTRAP_CHUNK = 4096;
/** How often the owner looks whether its store's failure changed, to tell the workers (their health follows it). */
const FAILURE_CHECK_MS = 100;
/**
 * The most of the live feed the owner holds for one worker that does not
 * read it (stopped, or far too slow): past it the worker's channel is
 * closed, and the worker restarts and loads a new snapshot. 256 MiB is
 * sixteen of the largest commit batches: a worker that is only busy for a
 * moment catches up long before it (docs/operations.md).
 */
export const MAX_WORKER_BACKLOG_BYTES = 256 * 1024 * 1024;

export interface OwnedStore extends KeyValueStore {
  runValid: AbstractKeyValueStore['runValid'];
  /** The oldest revision a watch can start at (the file engine's feedStatus). */
  readonly feedStatus: { oldestRevision: number };
}

export interface StoreOwnerServer {
  readonly socketPath: string;
  /** Stops accepting, ends every worker's replication watch and connection. */
  close(): Promise<void>;
}

/** `socketPath`: a file, or (Linux) an abstract socket name starting with a NUL, which leaves no file behind. */
export async function serveStoreOwner(store: OwnedStore, socketPath: string, logger: Logger): Promise<StoreOwnerServer> {
  const isFile = !socketPath.startsWith('\0');
  // A file left by an owner that was killed (a restart after a crash uses the same path).
  if (isFile) fs.rmSync(socketPath, { force: true });
  const live = new SharedFeed(store, logger);
  const connections = new Set<{ end(): void }>();
  const server = net.createServer((socket) => {
    const connection = serveWorker(store, live, socket, logger);
    connections.add(connection);
    socket.on('close', () => {
      connection.end();
      connections.delete(connection);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    socketPath,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const connection of connections) connection.end();
      live.close();
      await closed;
      if (isFile) fs.rmSync(socketPath, { force: true });
    },
  };
}

interface FeedSink {
  batch(bytes: Buffer): void;
  ended(error: unknown): void;
}

/**
 * The watcher limits the owner's store must be opened with: its watches
 * feed the workers and must never fall back to its history window (a
 * commit batch can be larger than the window: MAX_BATCH_BYTES is 16 MB,
 * --watch-history-bytes may be less), so they hold whatever one publish
 * hands them until the owner takes it, which it does at once. The owner
 * serves no other watch.
 */
export const OWNER_WATCHER_LIMITS = { maxQueueBytes: Number.POSITIVE_INFINITY };

/**
 * The live part of every worker's feed: ONE watch on every key, each batch
 * serialized once and the same bytes sent to every worker. Without previous
 * entries: a worker knows them from its own replica.
 */
class SharedFeed {
  private readonly sinks = new Set<FeedSink>();
  private watch: Watch;
  private closed = false;

  constructor(
    private readonly store: KeyValueStore,
    private readonly logger: Logger,
  ) {
    this.watch = this.open();
  }

  /** `sink` gets every batch from now on; the function returned stops that. */
  subscribe(sink: FeedSink): () => void {
    if (this.closed) sink.ended(new StoreClosedError('the store owner is closing'));
    else this.sinks.add(sink);
    return () => this.sinks.delete(sink);
  }

  close(): void {
    this.closed = true;
    this.watch.close();
  }

  private open(): Watch {
    const watch = this.store.watch({ prefix: '', startRevision: 0, prevEntry: false });
    void this.run(watch);
    return watch;
  }

  private async run(watch: Watch): Promise<void> {
    try {
      for (;;) {
        const batch = await watch.next();
        if (this.sinks.size === 0) continue;
        const bytes = encodeWatchBatch(batch);
        for (const sink of this.sinks) sink.batch(bytes);
      }
    } catch (error) {
      const fed = [...this.sinks];
      this.sinks.clear();
      for (const sink of fed) sink.ended(error);
      if (this.closed || error instanceof StoreClosedError) {
        this.closed = true;
        return;
      }
      // The workers fed so far may miss changes: each was ended (it is restarted and loads a new snapshot).
      // The feed itself starts again at once, in this turn, so no later worker's snapshot misses its start.
      this.logger.error({ err: error }, "the store owner's feed to its workers failed: they start again from a new snapshot");
      try {
        this.watch = this.open();
      } catch (reopen) {
        // The store is closing (or cannot watch at all): no feed, and later workers are told so at once.
        this.closed = true;
        this.logger.error({ err: reopen }, "the store owner's feed to its workers could not start again");
      }
    }
  }
}

function serveWorker(store: OwnedStore, live: SharedFeed, socket: net.Socket, logger: Logger): { end(): void } {
  let history: Watch | undefined;
  let unsubscribe: (() => void) | undefined;
  /** Live batches that came while the worker's bootstrap was still being sent: they follow it. */
  let held: Buffer[] | undefined = [];
  let heldBytes = 0;
  /** The name the worker gave (its process), for the log. */
  let name = 'a worker';
  // The store has no event for it: a failure (and its healing) is seen within FAILURE_CHECK_MS.
  let toldFailure: string | undefined;
  const failureCheck = setInterval(() => {
    const failure = store.failure;
    if (failure?.message === toldFailure) return;
    toldFailure = failure?.message;
    channel.send({ kind: 'failure', error: failure === undefined ? undefined : toWireError(failure) });
  }, FAILURE_CHECK_MS);
  failureCheck.unref();
  const channel = ownerChannel(socket, (messages) => {
    for (const message of messages) handle(message);
  });
  socket.on('error', (err) => logger.debug({ err }, 'worker connection failed'));
  const feedEnded = (error: unknown): void => {
    if (!socket.destroyed) channel.send({ kind: 'feed-ended', error: toWireError(error) });
  };

  const handle = (message: WorkerMessage): void => {
    switch (message.kind) {
      case 'call': {
        const { id } = message;
        store.runValid(message.call).then(
          (value) => channel.send({ kind: 'reply', id, value }),
          (error: unknown) => channel.send({ kind: 'fail', id, error: toWireError(error) }),
        );
        return;
      }
      case 'read-index':
        channel.send({ kind: 'reply', id: message.id, value: store.revision });
        return;
      case 'snapshot-info': {
        const { id } = message;
        store.snapshot().then(
          (view) => {
            view.release();
            channel.send({ kind: 'reply', id, value: { revision: view.revision, keyCount: view.keyCount, leases: [...view.leases] } });
          },
          (error: unknown) => channel.send({ kind: 'fail', id, error: toWireError(error) }),
        );
        return;
      }
      case 'bootstrap':
        if (message.name !== undefined) name = message.name;
        if (unsubscribe === undefined) bootstrap();
        return;
    }
  };

  /**
   * The snapshot, the history watch and the live subscription are taken in
   * the same turn: the history covers everything up to the snapshot's
   * revision, the live feed everything after it (and some before, which the
   * worker skips).
   */
  const bootstrap = (): void => {
    const historyFrom = store.feedStatus.oldestRevision;
    const snapshot = store.snapshot();
    history = store.watch({ prefix: '', startRevision: historyFrom, prevEntry: true });
    unsubscribe = live.subscribe({ batch: sendLive, ended: feedEnded });
    void snapshot
      .then(
        async (view) => {
          try {
            channel.send({ kind: 'bootstrap', revision: view.revision, historyFrom, keyCount: view.keyCount, historyId: store.historyId });
            let chunk: Array<[string, StoredEntry]> = [];
            for (const [key, entry] of view.entries()) {
              chunk.push([key, entry]);
              if (chunk.length === BOOTSTRAP_CHUNK) {
                channel.send({ kind: 'entries', entries: chunk });
                chunk = [];
                // Each chunk a frame of its own, the loop turning between them (the view stays as it was): sent in one
                // turn, a million keys were one frame, one serialization holding the owner's loop for seconds, with
                // every write and every other worker's questions waiting behind it.
                await channel.whenWritten();
                if (socket.destroyed) return;
              }
            }
            if (chunk.length > 0) channel.send({ kind: 'entries', entries: chunk });
          } finally {
            view.release();
          }
          void sendHistory(historyFrom, view.revision);
        },
        (error: unknown) => feedEnded(error),
      )
      .catch((error: unknown) => feedEnded(error));
  };

  /** The history window up to the snapshot's revision, with previous entries (the replica is past them); then the held live batches. */
  const sendHistory = async (historyFrom: number, upTo: number): Promise<void> => {
    const watch = history as Watch;
    try {
      while (historyFrom <= upTo) {
        const batch = await watch.next();
        const events = batch.events.filter((event) => event.revision <= upTo);
        channel.send({ kind: 'feed', batch: { events, revision: Math.min(batch.revision, upTo) } });
        if (batch.revision >= upTo) break;
      }
    } catch (error) {
      return feedEnded(error);
    } finally {
      watch.close();
    }
    // The live batches follow once the bootstrap has left: until then the socket holds it, and the bound is for the live feed.
    await channel.whenWritten();
    const waiting = held ?? [];
    held = undefined;
    for (const bytes of waiting) sendLive(bytes);
  };

  /** A live batch to the worker, unless it holds more than MAX_WORKER_BACKLOG_BYTES unread: then it is cut off. */
  const sendLive = (bytes: Buffer): void => {
    if (socket.destroyed) return;
    if (held !== undefined) {
      held.push(bytes);
      heldBytes += bytes.length;
      if (heldBytes > MAX_WORKER_BACKLOG_BYTES) cutOff(heldBytes);
      return;
    }
    const backlog = channel.backlogBytes + bytes.length;
    if (backlog > MAX_WORKER_BACKLOG_BYTES) return cutOff(backlog);
    channel.send({ kind: 'live-feed', bytes }, bytes.length);
  };

  const cutOff = (backlog: number): void => {
    logger.warn(
      { worker: name, backlogBytes: backlog, maxBytes: MAX_WORKER_BACKLOG_BYTES },
      `${name} does not read the store owner's feed (stopped or overloaded): its channel is closed, and it restarts`,
    );
    held = undefined;
    unsubscribe?.();
    socket.destroy();
  };

  return {
    end: () => {
      clearInterval(failureCheck);
      history?.close();
      unsubscribe?.();
      if (!socket.destroyed) channel.end();
    },
  };
}

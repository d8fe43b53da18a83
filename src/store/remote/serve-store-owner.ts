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
import type { KeyValueStore, Watch } from '../key-value-store';
import { FrameChannel } from './frame-channel';
import { type OwnerMessage, type WorkerMessage, toWireError } from './owner-protocol';

/** Entries per bootstrap frame: bounds the memory of one frame on both sides. */
const BOOTSTRAP_CHUNK = 4096;
/** How often the owner looks whether its store's failure changed, to tell the workers (their health follows it). */
const FAILURE_CHECK_MS = 100;

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

export async function serveStoreOwner(store: OwnedStore, socketPath: string, logger: Logger): Promise<StoreOwnerServer> {
  fs.rmSync(socketPath, { force: true });
  const connections = new Set<{ end(): void }>();
  const server = net.createServer((socket) => {
    const connection = serveWorker(store, socket, logger);
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
      await closed;
      fs.rmSync(socketPath, { force: true });
    },
  };
}

function serveWorker(store: OwnedStore, socket: net.Socket, logger: Logger): { end(): void } {
  let watch: Watch | undefined;
  // The store has no event for it: a failure (and its healing) is seen within FAILURE_CHECK_MS.
  let toldFailure: string | undefined;
  const failureCheck = setInterval(() => {
    const failure = store.failure;
    if (failure?.message === toldFailure) return;
    toldFailure = failure?.message;
    channel.send({ kind: 'failure', error: failure === undefined ? undefined : toWireError(failure) });
  }, FAILURE_CHECK_MS);
  failureCheck.unref();
  const channel = new FrameChannel<OwnerMessage, WorkerMessage>(socket, (messages) => {
    for (const message of messages) handle(message);
  });
  socket.on('error', (err) => logger.debug({ err }, 'worker connection failed'));

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
        if (watch === undefined) watch = bootstrap();
        return;
    }
  };

  /** The snapshot and the watch are taken in the same turn: the watch's history covers everything up to the snapshot. */
  const bootstrap = (): Watch => {
    const historyFrom = store.feedStatus.oldestRevision;
    const snapshot = store.snapshot();
    const feed = store.watch({ prefix: '', startRevision: historyFrom, prevEntry: true });
    void snapshot.then(
      (view) => {
        try {
          channel.send({ kind: 'bootstrap', revision: view.revision, historyFrom, keyCount: view.keyCount });
          let chunk: Array<[string, StoredEntry]> = [];
          for (const [key, entry] of view.entries()) {
            chunk.push([key, entry]);
            if (chunk.length === BOOTSTRAP_CHUNK) {
              channel.send({ kind: 'entries', entries: chunk });
              chunk = [];
            }
          }
          if (chunk.length > 0) channel.send({ kind: 'entries', entries: chunk });
        } finally {
          view.release();
        }
        void forward(feed);
      },
      (error: unknown) => channel.send({ kind: 'feed-ended', error: toWireError(error) }),
    );
    return feed;
  };

  const forward = async (feed: Watch): Promise<void> => {
    try {
      for (;;) channel.send({ kind: 'feed', batch: await feed.next() });
    } catch (error) {
      if (!socket.destroyed) channel.send({ kind: 'feed-ended', error: toWireError(error) });
    }
  };

  return {
    end: () => {
      clearInterval(failureCheck);
      watch?.close();
      if (!socket.destroyed) channel.end();
    },
  };
}

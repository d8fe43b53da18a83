/**
 * The worker-side store of --workers N: the shared contract, run against a
 * WorkerStore that reaches a real file store through a real unix socket
 * (the owner served in this process), plus what only it has: reads through
 * one worker see writes acknowledged through another, and a backup from a
 * worker is the owner's state at one revision.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { openFileStore, type FileStore, type FileStoreOptions } from '../../src/store/file';
import { ownerChannel } from '../../src/store/remote/owner-codec';
import { OWNER_SILENT_MS, openWorkerStore, type WorkerStore } from '../../src/store/remote/worker-store';
import { serveStoreOwner, type StoreOwnerServer } from '../../src/store/remote/serve-store-owner';
import { silentLogger } from '../../src/logger';
import { collectUntil, runStoreContract } from './store-contract';
import { expectSameList } from '../support/expect-same-list';
import { pollUntil, tempDataDirs } from '../support/temp-dirs';

const dirs = tempDataDirs();
afterAll(() => dirs.cleanup());

interface Owner {
  store: FileStore;
  server: StoreOwnerServer;
}

const owners: Owner[] = [];
let sockets = 0;

async function startOwner(options: Omit<FileStoreOptions, 'dataDir'> = {}): Promise<Owner> {
  const store = await openFileStore({ dataDir: dirs.make(), ...options });
  const socketPath = path.join(os.tmpdir(), `kv-worker-test-${process.pid}-${++sockets}.sock`);
  const server = await serveStoreOwner(store, socketPath, silentLogger);
  const owner = { store, server };
  owners.push(owner);
  return owner;
}

function worker(owner: Owner, limits = { maxKeyBytes: 4096, maxValueBytes: 1048576 }): Promise<WorkerStore> {
  return openWorkerStore({ socketPath: owner.server.socketPath, limits: { ...limits, maxTxnOps: 128 }, logger: silentLogger });
}

afterEach(async () => {
  for (const owner of owners.splice(0)) {
    await owner.server.close();
    await owner.store.close();
  }
});

runStoreContract('worker store over a file store owner', async () => worker(await startOwner()));
runStoreContract(
  'worker store over a file store owner (small limits)',
  async () => worker(await startOwner({ maxKeyBytes: 64, maxValueBytes: 256 }), { maxKeyBytes: 64, maxValueBytes: 256 }),
  { maxKeyBytes: 64, maxValueBytes: 256 },
);

describe('worker store: what only it has', () => {
  test('a read through one worker sees every write acknowledged through another before it began', async () => {
    const owner = await startOwner();
    const [a, b] = [await worker(owner), await worker(owner)];
    try {
      for (let i = 1; i <= 300; i++) {
        const writer = i % 2 === 0 ? a : b;
        const reader = writer === a ? b : a;
        const { revision } = await writer.set('k', i);
        // No await between the answer and the read: the reader's replica may not have the write yet, the read index waits for it.
        const [entry, keys] = await Promise.all([reader.get('k'), reader.list({ prefix: 'k' })]);
        expect(entry).toMatchObject({ value: i, modRevision: revision });
        expect(keys.entries[0]).toMatchObject({ value: i, modRevision: revision });
      }
    } finally {
      await a.close();
      await b.close();
    }
  });

  test('a watch resuming through one worker after a write answered through another is current to at least that write, never behind it', async () => {
    const owner = await startOwner();
    const [a, b] = [await worker(owner), await worker(owner)];
    try {
      for (let i = 1; i <= 200; i++) {
        const { revision } = await a.set('r/k', i);
        // No await between: b's replica may not hold the write yet. A first message behind the resume
        // point would tell a client the store went back (a restore), when it is only this worker that lags.
        const watch = b.watch({ key: 'r/k', startRevision: revision + 1 });
        try {
          expect(await watch.next()).toEqual({ events: [], revision });
        } finally {
          watch.close();
        }
      }
    } finally {
      await a.close();
      await b.close();
    }
  });

  test('a worker started late can watch from as far back as the owner keeps history', async () => {
    const owner = await startOwner();
    for (let i = 1; i <= 5; i++) await owner.store.set(`h/${i}`, i);
    await owner.store.delete('h/2');
    const late = await worker(owner);
    try {
      const watch = late.watch({ prefix: 'h/', startRevision: 1, prevEntry: true });
      const { events } = await collectUntil(watch, 6);
      expect(events).toEqual([
        ['put', 'h/1', 1, 1],
        ['put', 'h/2', 2, 2],
        ['put', 'h/3', 3, 3],
        ['put', 'h/4', 4, 4],
        ['put', 'h/5', 5, 5],
        ['delete', 'h/2', 6, undefined],
      ]);
      watch.close();
      expect(await late.get('h/1')).toMatchObject({ value: 1, modRevision: 1 });
      expect(await late.get('h/2')).toBeUndefined();
    } finally {
      await late.close();
    }
  });

  test("a worker's history, kept packed as it grows, gives the same events and previous entries as the owner's", async () => {
    const owner = await startOwner({ fsync: 'never' });
    const running = await worker(owner);
    try {
      // Enough changes that the worker packs the older ones (history-window.ts PACK_CHUNK), of every kind.
      const lease = await running.grantLease(600_000);
      for (let i = 1; i <= 1500; i++) {
        if (i % 97 === 0) await running.clear({ prefix: 'p/1' });
        else if (i % 13 === 0) await running.delete(`p/${i % 40}`);
        else await running.set(`p/${i % 40}`, { i, text: `é${'x'.repeat(i % 7)}` }, i % 5 === 0 ? { lease: lease.id } : undefined);
      }
      const end = running.revision;
      const read = async (store: FileStore | WorkerStore): Promise<unknown[]> => {
        const watch = store.watch({ prefix: 'p/', startRevision: 1, prevEntry: true });
        const { batches } = await collectUntil(watch, end);
        watch.close();
        return batches.flatMap((batch) => batch.events);
      };
      const fromOwner = await read(owner.store);
      expect(fromOwner.length).toBeGreaterThan(1500);
      expectSameList(await read(running), fromOwner);
    } finally {
      await running.close();
    }
  });

  test("a backup through a worker is the owner's state at one revision, while writes go on", async () => {
    const owner = await startOwner();
    const a = await worker(owner);
    try {
      const lease = await a.grantLease(60_000);
      await a.set('leased', true, { lease: lease.id });
      for (let i = 0; i < 100; i++) await a.set(`b/${i}`, i);
      let writing = true;
      const writes = (async () => {
        for (let i = 0; writing; i++) await owner.store.set(`b/${i % 100}`, -i);
      })();
      const snapshot = await a.snapshot();
      writing = false;
      await writes;
      try {
        const entries = [...snapshot.entries()];
        expect(entries).toHaveLength(snapshot.keyCount);
        expect(entries.length).toBe(101);
        // Every entry is at or before the snapshot's revision, and one is exactly at it.
        expect(Math.max(...entries.map(([, e]) => e.modRevision))).toBe(snapshot.revision);
        expect(snapshot.leases).toEqual([{ id: lease.id, ttlMs: 60_000, private: false }]);
      } finally {
        snapshot.release();
      }
    } finally {
      await a.close();
    }
  });

  test('a feed to the workers that fails ends the workers it fed, whose writes in flight say their outcome is unknown; the next worker serves', async () => {
    // The store opened WITHOUT the owner's watcher limits, so a batch larger than the watch queue and the history window breaks the feed.
    const owner = await startOwner({ feed: { history: { maxBytes: 1_000_000 } } });
    const a = await worker(owner);
    const value = 'v'.repeat(900_000);
    const outcomes = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => a.set(`big/${i}`, value)));
    expect(a.failure).toMatchObject({ code: 'UNAVAILABLE' });
    for (const [i, outcome] of outcomes.entries()) {
      // Committed either way (the owner took every write): a refusal must not read as "not applied".
      expect(await owner.store.get(`big/${i}`)).toMatchObject({ value });
      if (outcome.status === 'rejected') {
        expect(outcome.reason).toMatchObject({ code: 'UNAVAILABLE', message: expect.stringMatching(/may or may not have been applied/) });
      }
    }
    await a.close();
    const b = await worker(owner);
    try {
      expect(await b.get('big/7')).toMatchObject({ value });
      expect((await b.set('after', 1)).revision).toBe(owner.store.revision);
    } finally {
      await b.close();
    }
  });

  test('when the owner goes away, calls fail with UNAVAILABLE and the worker says so', async () => {
    const store = await openFileStore({ dataDir: dirs.make() });
    const socketPath = path.join(os.tmpdir(), `kv-worker-test-${process.pid}-${++sockets}.sock`);
    const server = await serveStoreOwner(store, socketPath, silentLogger);
    let lost: Error | undefined;
    const a = await openWorkerStore({
      socketPath,
      limits: { maxKeyBytes: 4096, maxValueBytes: 1048576, maxTxnOps: 128 },
      logger: silentLogger,
      onOwnerLost: (error) => (lost = error),
    });
    await a.set('k', 1);
    await server.close();
    await store.close();
    await expect(a.set('k', 2)).rejects.toMatchObject({ code: expect.stringMatching(/^(UNAVAILABLE|CLOSED|NOT_SENT)$/) });
    expect(lost).toBeDefined();
    expect(a.failure).toBe(lost);
    // Once the owner is known gone a write is not sent at all: reason NOT_SENT, which a client may send again.
    await expect(a.set('k', 3)).rejects.toMatchObject({ code: 'NOT_SENT', message: expect.stringContaining('nothing was applied') });
    await a.close();
  });

  test('an owner that answers is never taken as silent; an idle worker asks it something now and then', async () => {
    const owner = await fakeOwner();
    try {
      const w = await openWorkerStore({ socketPath: owner.socketPath, limits: LIMITS, logger: silentLogger });
      await pollUntil('two probes of an idle worker', () => (owner.state.questions >= 2 ? true : undefined), 10_000);
      expect(w.failure).toBeUndefined();
      await w.close();
    } finally {
      await owner.close();
    }
  });

  test('an owner that stops answering is the store failure once a question has waited OWNER_SILENT_MS; closing does not wait on that question', async () => {
    const owner = await fakeOwner();
    try {
      const w = await openWorkerStore({ socketPath: owner.socketPath, limits: LIMITS, logger: silentLogger });
      owner.state.silent = true;
      const since = performance.now();
      await pollUntil('the worker to find the owner silent', () => w.failure, 20_000);
      expect(performance.now() - since).toBeGreaterThanOrEqual(OWNER_SILENT_MS);
      expect(w.failure?.message).toMatch(/^the store owner has not answered for \d+\.\d s \(stopped, or too busy to answer\)/);
      // The probe left unanswered is no call of a client: the close must not wait for it.
      const closed = w.close().then(() => 'closed');
      await expect(Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 5000, 'still waiting'))])).resolves.toBe('closed');
    } finally {
      await owner.close();
    }
  });
});

const LIMITS = { maxKeyBytes: 4096, maxValueBytes: 1048576, maxTxnOps: 128 };

/** A store owner of an empty store that answers read-index questions until `state.silent`, and counts them. */
async function fakeOwner(): Promise<{ socketPath: string; state: { silent: boolean; questions: number }; close(): Promise<void> }> {
  const socketPath = path.join(os.tmpdir(), `kv-worker-test-${process.pid}-${++sockets}.sock`);
  const state = { silent: false, questions: 0 };
  const connections: net.Socket[] = [];
  const server = net.createServer((socket) => {
    connections.push(socket);
    const channel = ownerChannel(socket, (messages) => {
      for (const message of messages) {
        if (message.kind === 'bootstrap')
          channel.send({ kind: 'bootstrap', revision: 0, historyFrom: 1, keyCount: 0, historyId: undefined });
        if (message.kind !== 'read-index') continue;
        state.questions++;
        if (!state.silent) channel.send({ kind: 'reply', id: message.id, value: 0 });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return {
    socketPath,
    state,
    close: async () => {
      for (const socket of connections) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
      fs.rmSync(socketPath, { force: true });
    },
  };
}

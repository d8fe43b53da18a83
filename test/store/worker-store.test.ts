/**
 * The worker-side store of --workers N: the shared contract, run against a
 * WorkerStore that reaches a real file store through a real unix socket
 * (the owner served in this process), plus what only it has: reads through
 * one worker see writes acknowledged through another, and a backup from a
 * worker is the owner's state at one revision.
 */
import os from 'node:os';
import path from 'node:path';
import { openFileStore, type FileStore } from '../../src/store/file';
import { openWorkerStore, type WorkerStore } from '../../src/store/remote/worker-store';
import { serveStoreOwner, type StoreOwnerServer } from '../../src/store/remote/serve-store-owner';
import { silentLogger } from '../../src/logger';
import { runStoreContract } from './store-contract';
import { tempDataDirs } from '../support/temp-dirs';

const dirs = tempDataDirs();
afterAll(() => dirs.cleanup());

interface Owner {
  store: FileStore;
  server: StoreOwnerServer;
}

const owners: Owner[] = [];
let sockets = 0;

async function startOwner(limits: { maxKeyBytes?: number; maxValueBytes?: number } = {}): Promise<Owner> {
  const store = await openFileStore({ dataDir: dirs.make(), ...limits });
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

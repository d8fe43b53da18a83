/**
 * The store owner under --workers N: it holds the data directory and its
 * store, serves the workers' channel (store/remote) and nothing else, and
 * stops when the supervisor says so, after the workers have drained.
 */
import type { Logger } from '../logger';
import type { FileStore } from '../store/file';
import { serveStoreOwner } from '../store/remote/serve-store-owner';
import { ownerSocketPath, tellSupervisor } from './process-role';

/** Serves until `stopRequested`; then closes the channel. The caller closes the store. */
export async function serveAsStoreOwner(store: FileStore, where: string, stopRequested: Promise<unknown>, logger: Logger): Promise<void> {
  const server = await serveStoreOwner(store, ownerSocketPath(), logger);
  tellSupervisor({ kind: 'owner-ready', where });
  await stopRequested;
  await server.close();
}

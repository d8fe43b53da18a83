/**
 * Opens the engine the config names: the embedded file store (default) or
 * the etcd store. Returns the store and the words the ready line uses for
 * where the data lives.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createSecureContext } from 'node:tls';
import type { Config } from './config';
import type { Logger } from './logger';
import { InvalidArgumentError } from './store/errors';
import { openFileStore } from './store/file';
import type { KeyValueStore } from './store/key-value-store';
import type { ChangeFeedOptions } from './store/feed/change-feed';
import type { StoreObserver } from './store/store-observer';

export interface OpenedStore {
  store: KeyValueStore;
  /** For the ready line and errors: "data directory /x, fsync always" or "etcd prefix "kv/" at 3 endpoints". */
  where: string;
}

/**
 * `signal` stops the file store's recovery (openFileStore rejects with its reason); `observer` hears the file engine's work (metrics);
 * `watcher`: the file engine's watcher limits, if not the defaults (the store owner of --workers N, whose watches feed its workers).
 */
export async function openConfiguredStore(
  config: Config,
  logger: Logger,
  signal?: AbortSignal,
  observer?: StoreObserver,
  watcher?: ChangeFeedOptions['watcher'],
): Promise<OpenedStore> {
  if (config.engine === 'etcd') return openConfiguredEtcdStore(config);
  const dataDir = path.resolve(config.dataDir);
  const store = await openFileStore({
    dataDir,
    fsync: config.fsync,
    fsyncIntervalMs: config.fsyncIntervalMs,
    busyPollUs: config.busyPollUs,
    maxKeyBytes: config.maxKeyBytes,
    maxValueBytes: config.maxValueBytes,
    maxTxnOps: config.maxTxnOps,
    logger,
    signal,
    observer,
    feed: {
      progressIntervalMs: config.watchProgressMs,
      history: { maxChanges: config.watchHistoryChanges, maxBytes: config.watchHistoryBytes },
      watcher,
    },
  });
  return { store, where: `data directory ${dataDir}, fsync ${config.fsync}` };
}

/** Where the open failed, for the one line main prints. */
export function describeStoreLocation(config: Config): string {
  return config.engine === 'etcd' ? `etcd at ${config.etcdEndpoints.join(',')}` : path.resolve(config.dataDir);
}

async function openConfiguredEtcdStore(config: Config): Promise<OpenedStore> {
  if (config.etcdEndpoints.some((e) => /^https:\/\/(\d+\.\d+\.\d+\.\d+|\[[0-9a-fA-F:]+\]):/.test(e))) {
    // grpc-js sets the TLS ServerName to an IP endpoint, which Node reports on stderr as deprecated (DEP0123);
    // the operator can do nothing about it, and the certificate is still checked against the IP.
    process.noDeprecation = true;
  }
  const read = (file: string | undefined, flag: string): Buffer | undefined => {
    if (file === undefined) return undefined;
    try {
      return readFileSync(file);
    } catch (error) {
      // Still the system error (main prints those in one line), naming the flag.
      if (error instanceof Error) error.message = `cannot read ${file} (${flag}): ${error.message}`;
      throw error;
    }
  };
  const tls = { ca: read(config.etcdCa, '--etcd-ca'), cert: read(config.etcdCert, '--etcd-cert'), key: read(config.etcdKey, '--etcd-key') };
  if (tls.ca !== undefined || tls.cert !== undefined) {
    try {
      // As the etcd client will as it starts (grpc-js's createSsl), where a failure would be an unexpected one with a stack.
      createSecureContext({ ca: tls.ca, cert: tls.cert, key: tls.key });
    } catch (error) {
      const why = (error as Error).message.replace(/\s+/g, ' ').trim();
      throw new InvalidArgumentError(
        /key values mismatch/.test(why)
          ? `${config.etcdKey} (--etcd-key) is not the private key of the certificate in ${config.etcdCert} (--etcd-cert)`
          : `the TLS files for etcd (--etcd-ca, --etcd-cert, --etcd-key) cannot be used: ${why}`,
        { cause: error },
      );
    }
  }
  const password = read(config.etcdPasswordFile, '--etcd-password-file')
    ?.toString('utf8')
    .replace(/\r?\n$/, '');
  // Loaded only for this engine: the etcd client parses etcd's protos when loaded (about 0.25 s), which a file-engine server need not pay.
  const { openEtcdStore } = await import('./store/etcd');
  const store = await openEtcdStore({
    endpoints: config.etcdEndpoints,
    prefix: config.etcdPrefix,
    tls,
    auth: config.etcdUsername !== undefined && password !== undefined ? { username: config.etcdUsername, password } : undefined,
    maxKeyBytes: config.maxKeyBytes,
    maxValueBytes: config.maxValueBytes,
    maxRequestBytes: config.etcdMaxRequestBytes,
    maxTxnOps: config.maxTxnOps,
    callTimeoutMs: config.etcdTimeoutMs,
  });
  const count = config.etcdEndpoints.length;
  return { store, where: `etcd prefix ${JSON.stringify(config.etcdPrefix)} at ${count} endpoint${count === 1 ? '' : 's'}` };
}

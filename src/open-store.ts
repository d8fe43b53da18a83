/**
 * Opens the engine the config names: the embedded file store (default) or
 * the etcd store. Returns the store and the words the ready line uses for
 * where the data lives.
 */
import type { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createSecureContext } from 'node:tls';
import type { Config } from './config';
import type { Logger } from './logger';
import { certificates, checkValidNow, parsePrivateKey, TlsFileError } from './security/read-tls-files';
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
  stopPid?: number,
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
    stopPid,
    observer,
    feed: {
      progressIntervalMs: config.watchProgressMs,
      history: { maxChanges: config.watchHistoryChanges, maxBytes: config.watchHistoryBytes },
      watcher,
    },
  });
  return { store, where: `data directory ${dataDir}, fsync ${config.fsync}` };
}

/** How long before --etcd-cert expires a frontend starting with it warns: it is read only at start (no SIGHUP reload). */
const ETCD_CERT_WARN_DAYS = 30;

/**
 * Warns when --etcd-cert expires within ETCD_CERT_WARN_DAYS. Said once the server serves (a start that fails says
 * only why), by the process the operator started (under --workers the supervisor, once, not each worker).
 */
export function warnOfEtcdCertExpiry(config: Config, logger: Logger, now = Date.now()): void {
  if (config.engine !== 'etcd' || config.etcdCert === undefined) return;
  let leaf: X509Certificate | undefined;
  try {
    [leaf] = certificates(readFileSync(config.etcdCert), config.etcdCert, '--etcd-cert');
  } catch {
    return;
  }
  if (leaf === undefined) return;
  const leftMs = new Date(leaf.validTo).getTime() - now;
  const days = Math.floor(leftMs / 86_400_000);
  if (leftMs < 0 || days >= ETCD_CERT_WARN_DAYS) return;
  const hours = Math.floor(leftMs / 3_600_000);
  const within = days >= 1 ? `${days} day${days === 1 ? '' : 's'}` : `${hours} hour${hours === 1 ? '' : 's'}`;
  logger.warn(
    { file: config.etcdCert, expires: leaf.validTo },
    `the etcd client certificate (--etcd-cert) expires in ${within}: renew it and restart each frontend before then (it is read only at start)`,
  );
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
      if (!(error instanceof Error)) throw error;
      const code = (error as NodeJS.ErrnoException).code;
      const uid = process.getuid?.();
      // Not the data directory's advice that main gives other system errors: this file is only read.
      const advice =
        code === 'EACCES' || code === 'EPERM'
          ? `: the user this server runs as${uid === undefined ? '' : ` (uid ${uid})`} must be able to read it`
          : '';
      throw new InvalidArgumentError(`cannot read ${file} (${flag}): ${error.message}${advice}`, { cause: error });
    }
  };
  const tls = { ca: read(config.etcdCa, '--etcd-ca'), cert: read(config.etcdCert, '--etcd-cert'), key: read(config.etcdKey, '--etcd-key') };
  if (tls.ca !== undefined || tls.cert !== undefined) {
    // What etcd would refuse only in the handshake, seconds later, or OpenSSL would say without naming the file: said
    // now, naming it.
    try {
      if (tls.ca !== undefined) certificates(tls.ca, config.etcdCa as string, '--etcd-ca');
      const [leaf] = tls.cert === undefined ? [] : certificates(tls.cert, config.etcdCert as string, '--etcd-cert');
      const key = tls.key === undefined ? undefined : parsePrivateKey(tls.key, config.etcdKey as string, '--etcd-key');
      if (leaf !== undefined && key !== undefined && !leaf.checkPrivateKey(key)) {
        throw new TlsFileError(
          `${config.etcdKey} (--etcd-key) is not the private key of the certificate in ${config.etcdCert} (--etcd-cert)`,
        );
      }
      if (leaf !== undefined) checkValidNow(leaf, config.etcdCert as string, '--etcd-cert');
    } catch (error) {
      if (error instanceof TlsFileError) throw new InvalidArgumentError(error.message);
      throw error;
    }
    try {
      // As the etcd client will as it starts (grpc-js's createSsl), where a failure would be an unexpected one with a stack.
      createSecureContext({ ca: tls.ca, cert: tls.cert, key: tls.key });
    } catch (error) {
      const why = (error as Error).message.replace(/\s+/g, ' ').trim();
      throw new InvalidArgumentError(`the TLS files for etcd (--etcd-ca, --etcd-cert, --etcd-key) cannot be used: ${why}`, {
        cause: error,
      });
    }
  }
  // The file's text but for one line end (LF or CRLF) at its end: a password may have any other character.
  const password = read(config.etcdPasswordFile, '--etcd-password-file')
    ?.toString('utf8')
    .replace(/\r?\n$/, '');
  if (password === '') {
    throw new InvalidArgumentError(
      `${config.etcdPasswordFile} (--etcd-password-file) holds no password: write the etcd user's password in it`,
    );
  }
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
    watchProgressMs: config.watchProgressMs,
  });
  const count = config.etcdEndpoints.length;
  return { store, where: `etcd prefix ${JSON.stringify(config.etcdPrefix)} at ${count} endpoint${count === 1 ? '' : 's'}` };
}

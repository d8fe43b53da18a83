/**
 * Turns the security flags into what createServer takes (credentials and an
 * authenticator) and a reload for SIGHUP. The files are read here, never in
 * the server layer. A file that is bad on reload leaves the server with
 * what it had, and the log says why.
 */
import { statSync } from 'node:fs';
import type { ServerCredentials } from '@grpc/grpc-js';
import type { Config } from '../config';
import type { Logger } from '../logger';
import type { Access } from '../server/access';
import type { Caller } from '../server/grpc-call';
import { createRotatingTlsCredentials, type RotatingTlsCredentials, type TlsMaterial } from '../server/tls-credentials';
import type { AuthConfig } from '../auth/auth-config';
import { createAudit } from '../auth/audit';
import { createAuthenticator } from '../auth/authenticate';
import { FailureLimiter } from '../auth/failure-limiter';
import { readTlsFiles, TlsFileError, type TlsFiles } from './read-tls-files';

export interface ServerSecurity {
  /** Undefined: plaintext. */
  credentials?: ServerCredentials;
  /** The TLS material for the HTTP port (undefined: plaintext); onRotate hears of each SIGHUP that reloaded it. */
  tls?: { material: TlsMaterial; onRotate(listener: (material: TlsMaterial) => void): void };
  /** Undefined: no auth file, every caller may do everything. */
  authenticate?: (caller: Caller) => Access;
  /** Writes the audit lines still waiting for their interval (at shutdown, once no call is left). */
  flushAudit?: () => void;
  /**
   * Re-reads the certificate files and the auth file (SIGHUP), or only those in `files`, each on its
   * own: a bad one is not loaded, and the others are. Says which were reloaded and which were not.
   */
  reload(files?: readonly SecurityFile[]): { reloaded: SecurityFile[]; failed: SecurityFile[] };
}

/** The files reload() re-reads: the certificate, key and client-CA files, and the auth file. */
export type SecurityFile = 'tls' | 'auth';

/**
 * How reloads are logged. `process`: the child of --workers N this is ("worker-1"), whose supervisor
 * says once for all that a reload worked: the child says it at debug level, and names itself in the
 * error if a file it was told to reload fails (it changed after the supervisor read it).
 */
export interface ReloadLogging {
  process?: string;
}

type SecurityConfig = Pick<Config, 'tlsCert' | 'tlsKey' | 'tlsClientCa' | 'authFile' | 'authFailuresPerMinute'> &
  Partial<Pick<Config, 'etcdCa' | 'etcdCert' | 'etcdKey' | 'etcdPasswordFile'>>;

/** Rejects with TlsFileError or AuthFileError (one-line messages) when a file is unusable at start. */
export async function loadServerSecurity(
  config: SecurityConfig,
  logger: Logger,
  { process: child }: ReloadLogging = {},
): Promise<ServerSecurity> {
  const reloads = new Map<SecurityFile, () => boolean>();
  const reloadedLevel = child === undefined ? 'info' : 'debug';
  const said = child === undefined ? 'SIGHUP' : `SIGHUP in ${child}`;
  const failed = (reason: string, what: string): void =>
    logger.error(child === undefined ? { reason } : { reason, process: child }, `${said}: ${what}`);
  let credentials: ServerCredentials | undefined;
  let tlsForHttp: ServerSecurity['tls'];
  if (config.tlsCert !== undefined && config.tlsKey !== undefined) {
    const files: TlsFiles = { certFile: config.tlsCert, keyFile: config.tlsKey, clientCaFile: config.tlsClientCa };
    const material = readTlsFiles(files);
    warnIfOpenToAll(logger, files.keyFile, '--tls-key');
    const tls = createTls(material, files);
    credentials = tls.credentials;
    const rotated: ((material: TlsMaterial) => void)[] = [];
    tlsForHttp = { material, onRotate: (listener) => rotated.push(listener) };
    reloads.set('tls', () => {
      try {
        const next = readTlsFiles(files);
        warnIfOpenToAll(logger, files.keyFile, '--tls-key');
        tls.rotate(next);
        for (const listener of rotated) listener(next);
        logger[reloadedLevel]({ cert: files.certFile }, `${said}: TLS certificates reloaded; new connections get them`);
        return true;
      } catch (error) {
        failed((error as Error).message, 'TLS certificates NOT reloaded; still serving the previous ones');
        return false;
      }
    });
  }

  let authenticate: ServerSecurity['authenticate'];
  let flushAudit: ServerSecurity['flushAudit'];
  const authFile = config.authFile;
  if (authFile !== undefined) {
    // Loaded only with an auth file: the YAML parser takes about 20 ms to load, which every start-up would pay.
    const { readAuthFile } = await import('../auth/read-auth-file');
    let current: AuthConfig = readAuthFile(authFile);
    warnIfOpenToAll(logger, authFile, '--auth-file');
    const authenticator = createAuthenticator({
      config: () => current,
      limiter: new FailureLimiter(config.authFailuresPerMinute),
      audit: createAudit(logger),
    });
    authenticate = authenticator.authenticate;
    flushAudit = authenticator.flushAudit;
    reloads.set('auth', () => {
      try {
        current = readAuthFile(authFile);
        warnIfOpenToAll(logger, authFile, '--auth-file');
        logger[reloadedLevel]({ authFile, roles: current.roles.size, tokens: current.tokens.length }, `${said}: auth file reloaded`);
        // Open streams were let in by the previous file: each is checked again, and ends if it no longer may.
        authenticator.renewHeld();
        return true;
      } catch (error) {
        failed((error as Error).message, 'auth file NOT reloaded; the previous one still applies');
        return false;
      }
    });
  }

  // Those a reload could be taken to cover: they are read once, at start.
  const etcdFiles = [config.etcdCa, config.etcdCert, config.etcdKey, config.etcdPasswordFile].some((file) => file !== undefined);
  const etcdFilesNote = etcdFiles ? '; the --etcd-* files are read only at start: restart to use new ones' : '';
  return {
    credentials,
    tls: tlsForHttp,
    authenticate,
    flushAudit,
    reload: (only) => {
      // Warned with --etcd-* files: whoever sent it may have meant to rotate those.
      if (reloads.size === 0)
        logger[etcdFiles ? 'warn' : reloadedLevel](`${said}: nothing to reload (no TLS files, no auth file)${etcdFilesNote}`);
      const outcome: ReturnType<ServerSecurity['reload']> = { reloaded: [], failed: [] };
      // Every file is tried, the certificates whatever the auth file's fate.
      for (const [file, reload] of reloads) {
        if (only === undefined || only.includes(file)) outcome[reload() ? 'reloaded' : 'failed'].push(file);
      }
      return outcome;
    },
  };
}

/**
 * Says, in a warn line, when a file that guards the server is open to every
 * user of the machine: an auth file anyone may write (any of them can add a
 * token with any role, taken at the next reload), a private key anyone may
 * read. ssh refuses such files; the server says so and goes on, since the
 * operator may have reasons (a single-user machine).
 */
function warnIfOpenToAll(logger: Logger, file: string, flag: '--auth-file' | '--tls-key'): void {
  let mode: number;
  try {
    mode = statSync(file).mode & 0o777;
  } catch {
    return; // it was just read: a file gone meanwhile is the next read's to report
  }
  const octal = `0${mode.toString(8)}`;
  if (flag === '--auth-file' && (mode & 0o002) !== 0) {
    logger.warn(
      { file, mode: octal },
      `${file} (${flag}) can be written by every user of this machine: any of them can add a token with any role, taken at the next reload; chmod o-w it`,
    );
  }
  if (flag === '--tls-key' && (mode & 0o006) !== 0) {
    logger.warn(
      { file, mode: octal },
      `${file} (${flag}) can be ${(mode & 0o004) !== 0 ? 'read' : 'written'} by every user of this machine: it is the server's private key; chmod o-rwx it`,
    );
  }
}

function createTls(material: TlsMaterial, files: TlsFiles): RotatingTlsCredentials {
  try {
    return createRotatingTlsCredentials(material);
  } catch (error) {
    throw new TlsFileError(`${files.certFile} and ${files.keyFile} do not make a TLS context: ${(error as Error).message}`);
  }
}

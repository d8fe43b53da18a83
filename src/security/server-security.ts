/**
 * Turns the security flags into what createServer takes (credentials and an
 * authenticator) and a reload for SIGHUP. The files are read here, never in
 * the server layer. A file that is bad on reload leaves the server with
 * what it had, and the log says why.
 */
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
  /** Re-reads the certificate files and the auth file (SIGHUP); false if one of them was bad (and not reloaded). */
  reload(): boolean;
}

type SecurityConfig = Pick<Config, 'tlsCert' | 'tlsKey' | 'tlsClientCa' | 'authFile' | 'authFailuresPerMinute'>;

/**
 * Rejects with TlsFileError or AuthFileError (one-line messages) when a file is unusable at start.
 * `reloadedLevel`: the level of the line saying a reload worked ('debug' in the processes of
 * --workers N, whose supervisor says it once for all of them); a failed reload is always an error.
 */
export async function loadServerSecurity(
  config: SecurityConfig,
  logger: Logger,
  reloadedLevel: 'info' | 'debug' = 'info',
): Promise<ServerSecurity> {
  const reloads: (() => boolean)[] = [];
  let credentials: ServerCredentials | undefined;
  let tlsForHttp: ServerSecurity['tls'];
  if (config.tlsCert !== undefined && config.tlsKey !== undefined) {
    const files: TlsFiles = { certFile: config.tlsCert, keyFile: config.tlsKey, clientCaFile: config.tlsClientCa };
    const material = readTlsFiles(files);
    const tls = createTls(material, files);
    credentials = tls.credentials;
    const rotated: ((material: TlsMaterial) => void)[] = [];
    tlsForHttp = { material, onRotate: (listener) => rotated.push(listener) };
    reloads.push(() => {
      try {
        const next = readTlsFiles(files);
        tls.rotate(next);
        for (const listener of rotated) listener(next);
        logger[reloadedLevel]({ cert: files.certFile }, 'SIGHUP: TLS certificates reloaded; new connections get them');
        return true;
      } catch (error) {
        logger.error({ reason: (error as Error).message }, 'SIGHUP: TLS certificates NOT reloaded; still serving the previous ones');
        return false;
      }
    });
  }

  let authenticate: ServerSecurity['authenticate'];
  const authFile = config.authFile;
  if (authFile !== undefined) {
    // Loaded only with an auth file: the YAML parser takes about 20 ms to load, which every start-up would pay.
    const { readAuthFile } = await import('../auth/read-auth-file');
    let current: AuthConfig = readAuthFile(authFile);
    const authenticator = createAuthenticator({
      config: () => current,
      limiter: new FailureLimiter(config.authFailuresPerMinute),
      audit: createAudit(logger),
    });
    authenticate = authenticator.authenticate;
    reloads.push(() => {
      try {
        current = readAuthFile(authFile);
        logger[reloadedLevel]({ authFile, roles: current.roles.size, tokens: current.tokens.length }, 'SIGHUP: auth file reloaded');
        // Open streams were let in by the previous file: each is checked again, and ends if it no longer may.
        authenticator.renewHeld();
        return true;
      } catch (error) {
        logger.error({ reason: (error as Error).message }, 'SIGHUP: auth file NOT reloaded; the previous one still applies');
        return false;
      }
    });
  }

  return {
    credentials,
    tls: tlsForHttp,
    authenticate,
    reload: () => {
      if (reloads.length === 0) logger[reloadedLevel]('SIGHUP: nothing to reload (no TLS files, no auth file)');
      // Every file is tried, the certificates whatever the auth file's fate.
      return reloads.map((reload) => reload()).every(Boolean);
    },
  };
}

function createTls(material: TlsMaterial, files: TlsFiles): RotatingTlsCredentials {
  try {
    return createRotatingTlsCredentials(material);
  } catch (error) {
    throw new TlsFileError(`${files.certFile} and ${files.keyFile} do not make a TLS context: ${(error as Error).message}`);
  }
}

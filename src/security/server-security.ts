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
import { readAuthFile } from '../auth/read-auth-file';
import { readTlsFiles, TlsFileError, type TlsFiles } from './read-tls-files';

export interface ServerSecurity {
  /** Undefined: plaintext. */
  credentials?: ServerCredentials;
  /** Undefined: no auth file, every caller may do everything. */
  authenticate?: (caller: Caller) => Access;
  /** Re-reads the certificate files and the auth file (SIGHUP). */
  reload(): void;
}

type SecurityConfig = Pick<Config, 'tlsCert' | 'tlsKey' | 'tlsClientCa' | 'authFile' | 'authFailuresPerMinute'>;

/** Throws TlsFileError or AuthFileError (one-line messages) when a file is unusable at start. */
export function loadServerSecurity(config: SecurityConfig, logger: Logger): ServerSecurity {
  const reloads: (() => void)[] = [];
  let credentials: ServerCredentials | undefined;
  if (config.tlsCert !== undefined && config.tlsKey !== undefined) {
    const files: TlsFiles = { certFile: config.tlsCert, keyFile: config.tlsKey, clientCaFile: config.tlsClientCa };
    const tls = createTls(readTlsFiles(files), files);
    credentials = tls.credentials;
    reloads.push(() => {
      try {
        tls.rotate(readTlsFiles(files));
        logger.info({ cert: files.certFile }, 'SIGHUP: TLS certificates reloaded; new connections get them');
      } catch (error) {
        logger.error({ reason: (error as Error).message }, 'SIGHUP: TLS certificates NOT reloaded; still serving the previous ones');
      }
    });
  }

  let authenticate: ServerSecurity['authenticate'];
  const authFile = config.authFile;
  if (authFile !== undefined) {
    let current: AuthConfig = readAuthFile(authFile);
    authenticate = createAuthenticator({
      config: () => current,
      limiter: new FailureLimiter(config.authFailuresPerMinute),
      audit: createAudit(logger),
    });
    reloads.push(() => {
      try {
        current = readAuthFile(authFile);
        logger.info({ authFile, roles: current.roles.size, tokens: current.tokens.length }, 'SIGHUP: auth file reloaded');
      } catch (error) {
        logger.error({ reason: (error as Error).message }, 'SIGHUP: auth file NOT reloaded; the previous one still applies');
      }
    });
  }

  return {
    credentials,
    authenticate,
    reload: () => {
      if (reloads.length === 0) logger.info('SIGHUP: nothing to reload (no TLS files, no auth file)');
      for (const reload of reloads) reload();
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

/**
 * Under --workers N the workers serve with the TLS and auth material the
 * supervisor last found good, which it sends them over the IPC channel: a
 * worker never reads the files itself. So a worker started after a file went
 * bad (a crash, then its replacement) serves what the others serve, and so
 * does one started after a file changed without a SIGHUP.
 */
import { readAuthText } from '../auth/read-auth-file';
import type { Config } from '../config';
import type { Logger } from '../logger';
import type { SecurityFile, ServerSecurity } from '../security/server-security';
import type { TlsMaterial } from '../server/tls-credentials';

/** The contents of the files, as they cross the IPC channel (JSON): the PEM files in base64, the auth file as text. */
export interface SecurityMaterial {
  tls?: { cert: string; key: string; clientCa?: string };
  auth?: string;
}

export interface GoodSecurityMaterial {
  /** The material of every file as last found good: what a starting worker gets. */
  current(): SecurityMaterial;
  /**
   * After a SIGHUP whose reload found `files` good: their material, to send to every worker. The auth file is
   * read again for its text and checked again; if it went bad in between, it is left out (and logged).
   */
  reloaded(files: readonly SecurityFile[]): SecurityMaterial;
}

/**
 * The supervisor's record, beside its `security` (loaded from the same files): the certificates as its own
 * TLS holds them (kept current by each rotation), the auth file's text as read now and checked. Throws
 * AuthFileError if the auth file cannot be read or is not valid now.
 */
export function trackSecurityMaterial(
  config: Pick<Config, 'authFile'>,
  security: Pick<ServerSecurity, 'tls'>,
  logger: Logger,
): GoodSecurityMaterial {
  const material: SecurityMaterial = {};
  if (security.tls !== undefined) {
    material.tls = encodeTls(security.tls.material);
    security.tls.onRotate((next) => (material.tls = encodeTls(next)));
  }
  const authFile = config.authFile;
  if (authFile !== undefined) material.auth = readAuthText(authFile).text;
  return {
    current: () => ({ ...material }),
    reloaded: (files) => {
      const sent: SecurityMaterial = {};
      if (files.includes('tls')) sent.tls = material.tls;
      if (files.includes('auth') && authFile !== undefined) {
        try {
          material.auth = sent.auth = readAuthText(authFile).text;
        } catch (error) {
          logger.error(
            { reason: (error as Error).message },
            'SIGHUP: the auth file changed again while it was reloaded and is not valid now: the workers keep the previous one',
          );
        }
      }
      return sent;
    },
  };
}

export function decodeTls(tls: NonNullable<SecurityMaterial['tls']>): TlsMaterial {
  return {
    cert: Buffer.from(tls.cert, 'base64'),
    key: Buffer.from(tls.key, 'base64'),
    clientCa: tls.clientCa === undefined ? undefined : Buffer.from(tls.clientCa, 'base64'),
  };
}

function encodeTls(tls: TlsMaterial): NonNullable<SecurityMaterial['tls']> {
  return { cert: tls.cert.toString('base64'), key: tls.key.toString('base64'), clientCa: tls.clientCa?.toString('base64') };
}

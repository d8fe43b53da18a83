/**
 * A worker's TLS and auth under --workers N, built from the material its
 * supervisor sends (security-material.ts says why it reads no file): asked
 * for once as the worker starts, replaced by each reload the supervisor
 * sends after a SIGHUP.
 */
import type { AuthConfig } from '../auth/auth-config';
import { parseAuthConfig } from '../auth/auth-config';
import { createAudit } from '../auth/audit';
import { createAuthenticator } from '../auth/authenticate';
import { FailureLimiter } from '../auth/failure-limiter';
import type { Config } from '../config';
import type { Logger } from '../logger';
import type { ServerSecurity } from '../security/server-security';
import { createRotatingTlsCredentials, type TlsMaterial } from '../server/tls-credentials';
import { isReloadMessage, isSecurityAnswer, type SecurityRequest } from './process-role';
import { decodeTls, type SecurityMaterial } from './security-material';

export type ServingSecurity = Omit<ServerSecurity, 'reload'>;

type SecurityConfig = Pick<Config, 'tlsCert' | 'authFile' | 'authFailuresPerMinute'>;

/**
 * Asks the supervisor for the material and builds the worker's security from it; from then on applies
 * every reload the supervisor sends. Reloads that come before the answer are already in it (the IPC
 * channel keeps order), so they are dropped. Rejects with `signal`'s reason if the worker is stopped first.
 */
export function securityFromSupervisor(
  config: SecurityConfig,
  logger: Logger,
  name: string,
  signal: AbortSignal,
): Promise<ServingSecurity> {
  return new Promise((resolve, reject) => {
    let built: ReturnType<typeof buildSecurity> | undefined;
    const stopped = (): Error => (signal.reason instanceof Error ? signal.reason : new Error('stopped'));
    const onAbort = (): void => {
      process.off('message', onMessage);
      reject(stopped());
    };
    const onMessage = (message: unknown): void => {
      if (built !== undefined) {
        if (isReloadMessage(message)) built.apply(message.material);
        return;
      }
      if (!isSecurityAnswer(message)) return;
      signal.removeEventListener('abort', onAbort);
      try {
        built = buildSecurity(config, message.material, logger, name);
        resolve(built.security);
      } catch (error) {
        process.off('message', onMessage);
        reject(error);
      }
    };
    if (signal.aborted) return reject(stopped());
    signal.addEventListener('abort', onAbort, { once: true });
    process.on('message', onMessage);
    const request: SecurityRequest = { kind: 'security-request' };
    process.send?.(request);
  });
}

/** The parts createServer takes, as loadServerSecurity makes them from files, but from `material`. */
function buildSecurity(
  config: SecurityConfig,
  material: SecurityMaterial,
  logger: Logger,
  name: string,
): { security: ServingSecurity; apply(update: SecurityMaterial): void } {
  const security: ServingSecurity = {};
  let rotate: ((next: TlsMaterial) => void) | undefined;
  if (config.tlsCert !== undefined) {
    if (material.tls === undefined) throw new Error('the supervisor sent no TLS material');
    const first = decodeTls(material.tls);
    const tls = createRotatingTlsCredentials(first);
    const rotated: ((next: TlsMaterial) => void)[] = [];
    security.credentials = tls.credentials;
    security.tls = { material: first, onRotate: (listener) => rotated.push(listener) };
    rotate = (next) => {
      tls.rotate(next);
      for (const listener of rotated) listener(next);
    };
  }
  let replaceAuth: ((text: string) => void) | undefined;
  const authFile = config.authFile;
  if (authFile !== undefined) {
    if (material.auth === undefined) throw new Error('the supervisor sent no auth file');
    let current: AuthConfig = parseAuthConfig(material.auth, authFile);
    const authenticator = createAuthenticator({
      config: () => current,
      limiter: new FailureLimiter(config.authFailuresPerMinute),
      audit: createAudit(logger),
    });
    security.authenticate = authenticator.authenticate;
    security.flushAudit = authenticator.flushAudit;
    replaceAuth = (text) => {
      current = parseAuthConfig(text, authFile);
      // Open streams were let in by the previous file: each is checked again, and ends if it no longer may.
      authenticator.renewHeld();
    };
  }
  // The supervisor checked the material and said once for all that it was reloaded: this worker says so at
  // debug level, or, if the material fails here all the same, names itself and keeps what it had.
  const applyOne = (what: string, apply: () => void): void => {
    try {
      apply();
      logger.debug(`SIGHUP in ${name}: ${what} reloaded`);
    } catch (error) {
      logger.error(
        { reason: (error as Error).message, process: name },
        `SIGHUP in ${name}: ${what} NOT reloaded; still serving the previous one`,
      );
    }
  };
  return {
    security,
    apply: (update) => {
      const tls = update.tls;
      if (tls !== undefined && rotate !== undefined) applyOne('TLS certificates', () => rotate?.(decodeTls(tls)));
      const auth = update.auth;
      if (auth !== undefined && replaceAuth !== undefined) applyOne('auth file', () => replaceAuth?.(auth));
    },
  };
}

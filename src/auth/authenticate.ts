/**
 * From a call's credentials to what it may do (the server's authenticate
 * seam, grpc-call.ts). A bearer token is checked first when one is sent (a
 * bad token is refused, never passed over for the certificate); otherwise a
 * mutual-TLS client certificate is matched by subject CN or SAN. The
 * identity's role then decides each key and prefix the handler asks about.
 */
import type { PeerCertificate } from 'node:tls';
import { status } from '@grpc/grpc-js';
import {
  type Access,
  type AccessTarget,
  AuthRateLimitedError,
  PERMISSIONS,
  type Permission,
  PermissionDeniedError,
  shown,
  UnauthenticatedError,
} from '../server/access';
import type { Caller } from '../server/grpc-call';
import type { AuthConfig, CertificateEntry, Role } from './auth-config';
import type { Audit, AuditEntry } from './audit';
import type { FailureLimiter } from './failure-limiter';
import { findToken } from './token';

export interface AuthenticatorOptions {
  /** The auth file as last loaded; read once per call, so a reload applies from the next call on. */
  config: () => AuthConfig;
  limiter: FailureLimiter;
  audit: Audit;
}

export function createAuthenticator({ config, limiter, audit }: AuthenticatorOptions): (caller: Caller) => Access {
  return (caller) => {
    const { tokens, certificates } = config();
    const refuse = (identity: string, why: string, error: Error): never => {
      const code = error instanceof AuthRateLimitedError ? status.RESOURCE_EXHAUSTED : status.UNAUTHENTICATED;
      audit.denied({ identity, peer: caller.peer, method: caller.method, code }, why);
      throw error;
    };

    const header = caller.metadata.get('authorization');
    if (header.length > 0) {
      const retryAfterMs = limiter.retryAfterMs(caller.peer);
      if (retryAfterMs > 0) {
        return refuse('anonymous', 'too many failed authentications from this address', new AuthRateLimitedError(retryAfterMs));
      }
      const token = header.length === 1 && typeof header[0] === 'string' ? /^Bearer +(\S+)$/i.exec(header[0])?.[1] : undefined;
      if (token === undefined) {
        const why = 'malformed authorization metadata';
        return refuse('anonymous', why, new UnauthenticatedError(`${why}: send exactly one "authorization: Bearer <token>"`));
      }
      const entry = findToken(tokens, token);
      if (entry === undefined) {
        limiter.recordFailure(caller.peer);
        return refuse('anonymous', 'unknown token', new UnauthenticatedError('unknown or revoked token'));
      }
      return new RoleAccess(`token:${entry.name}`, entry.role, caller, audit);
    }

    if (caller.certificate !== undefined) {
      const names = certificateNames(caller.certificate);
      const entry = findCertificate(certificates, names);
      if (entry !== undefined) return new RoleAccess(`cert:${describeMatch(entry)}`, entry.role, caller, audit);
      const shown = names.cn.length > 0 ? `CN=${names.cn[0]}` : (names.san[0] ?? 'no subject name');
      const why = `client certificate ${shown} is not in the auth file`;
      return refuse(`cert:${shown}`, why, new UnauthenticatedError(`${why}, and no bearer token was sent`));
    }
    return refuse('anonymous', 'no credentials', new UnauthenticatedError('no credentials: send "authorization: Bearer <token>" metadata'));
  };
}

/** One call's permissions under one role; remembers the admin permissions it granted, to audit them with the outcome. */
class RoleAccess implements Access {
  private readonly adminTargets: AccessTarget[] = [];
  readonly restricted = true;

  constructor(
    private readonly identity: string,
    private readonly role: Role,
    private readonly caller: Caller,
    private readonly audit: Audit,
  ) {}

  key(permission: Permission, key: string): void {
    this.check(permission, { key }, (grant) => key.startsWith(grant));
  }

  /** Allowed only if one grant covers the whole prefix: a wider prefix is denied, never narrowed to what the role may see. */
  prefix(permission: Permission, prefix: string): void {
    this.check(permission, { prefix }, (grant) => prefix.startsWith(grant));
  }

  leaseKeys(permission: Permission, lease: number, keys: readonly string[]): void {
    for (const key of keys) this.check(permission, { lease }, (grant) => key.startsWith(grant), { key });
  }

  finished(code: status): void {
    for (const target of this.adminTargets) this.audit.admin({ ...this.entry(code), ...shownTarget(target), permission: 'admin' });
  }

  /** `logged`: what the audit log names instead of the target (the key of a lease the caller is not told). */
  private check(
    permission: Permission,
    target: AccessTarget,
    covers: (grantPrefix: string) => boolean,
    logged: AccessTarget = target,
  ): void {
    const needed = PERMISSIONS.indexOf(permission);
    if (!this.role.grants.some((grant) => PERMISSIONS.indexOf(grant.permission) >= needed && covers(grant.prefix))) {
      this.audit.denied(
        {
          ...this.entry(status.PERMISSION_DENIED),
          ...shownTarget(logged),
          ...('lease' in target ? { lease: target.lease } : {}),
          permission,
        },
        `role ${JSON.stringify(this.role.name)} does not grant ${permission}`,
      );
      throw new PermissionDeniedError(permission, target);
    }
    if (permission === 'admin') this.adminTargets.push(target);
  }

  private entry(code: status): AuditEntry {
    return { identity: this.identity, peer: this.caller.peer, method: this.caller.method, code };
  }
}

function shownTarget(target: AccessTarget): { key: string } | { prefix: string } | { lease: number } {
  if ('lease' in target) return target;
  return 'key' in target ? { key: shown(target.key) } : { prefix: shown(target.prefix) };
}

interface CertificateNames {
  cn: string[];
  /** As openssl and Node print them: "DNS:billing.internal", "URI:spiffe://prod/billing", "IP Address:10.0.0.7". */
  san: string[];
}

function certificateNames(certificate: PeerCertificate): CertificateNames {
  // Node types the subject as always present with a string CN; a certificate may have none, or several.
  const cn = (certificate.subject as Partial<Record<string, string | string[]>> | undefined)?.CN;
  return { cn: cn === undefined ? [] : [cn].flat(), san: splitSubjectAltName(certificate.subjectaltname ?? '') };
}

/** The first entry, in file order, that names the certificate. */
function findCertificate(entries: readonly CertificateEntry[], names: CertificateNames): CertificateEntry | undefined {
  return entries.find(({ match }) => ('cn' in match ? names.cn.includes(match.cn) : names.san.includes(match.san)));
}

function describeMatch({ match }: CertificateEntry): string {
  return 'cn' in match ? `CN=${match.cn}` : match.san;
}

/**
 * Node's subjectaltname: "DNS:a, IP Address:10.0.0.7"; a value with a comma
 * or a quote in it is a JSON string ('DNS:"a,b"'), so it cannot smuggle in
 * a second name.
 */
export function splitSubjectAltName(text: string): string[] {
  const names: string[] = [];
  for (const match of text.matchAll(/([^:,]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/g)) {
    const type = match[1].trim();
    const raw = match[2];
    names.push(`${type}:${raw.startsWith('"') ? (JSON.parse(raw) as string) : raw}`);
  }
  return names;
}

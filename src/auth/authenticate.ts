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
import { clientKey, type FailureLimiter } from './failure-limiter';
import { RefusalLogs } from '../server/connection-limits';
import { findToken } from './token';

export interface AuthenticatorOptions {
  /** The auth file as last loaded; read once per call, so a reload applies from the next call on. */
  config: () => AuthConfig;
  limiter: FailureLimiter;
  audit: Audit;
}

export interface Authenticator {
  /** What this caller may do; throws (UnauthenticatedError, AuthRateLimitedError) for bad credentials. */
  authenticate: (caller: Caller) => Access;
  /** After a reload of the auth file: every call that holds its access (Access.hold) is checked again. */
  renewHeld: () => void;
  /** Audits the rate-limited refusals still counted for a later line, now (at shutdown). */
  flushAudit: () => void;
}

/** Who a caller is, and its role, by the auth file as loaded now. */
interface Identity {
  name: string;
  role: Role;
}

export function createAuthenticator({ config, limiter, audit }: AuthenticatorOptions): Authenticator {
  // The limiter stops a guessing client cheaply: its refused calls are audited as a count per address, at once and
  // then at most every 10 s (as refused connections and handshakes are logged), not as a line each.
  const rateLimited = new RefusalLogs((address, calls) =>
    audit.denied(
      { identity: 'anonymous', peer: address, code: status.RESOURCE_EXHAUSTED, calls },
      `too many failed authentications from this address: ${calls} call${calls === 1 ? '' : 's'} refused`,
    ),
  );
  /**
   * `renewing`: the identity of a caller let in before, checked again after a reload: no rate limit
   * applies, no failure is counted, and a revoked token is audited under the name it had.
   */
  const identify = (caller: Caller, renewing?: string): Identity => {
    const { tokens, certificates } = config();
    const refuse = (identity: string, why: string, error: UnauthenticatedError): never => {
      audit.denied({ identity, peer: caller.peer, method: caller.method, code: status.UNAUTHENTICATED }, why);
      throw error;
    };

    const header = caller.metadata.get('authorization');
    if (header.length > 0) {
      const retryAfterMs = renewing !== undefined ? 0 : limiter.retryAfterMs(caller.peer);
      if (retryAfterMs > 0) {
        rateLimited.refused(clientKey(caller.peer));
        throw new AuthRateLimitedError(retryAfterMs);
      }
      const token = header.length === 1 && typeof header[0] === 'string' ? /^Bearer +(\S+)$/i.exec(header[0])?.[1] : undefined;
      if (token === undefined) {
        const why = 'malformed authorization metadata';
        return refuse('anonymous', why, new UnauthenticatedError(`${why}: send exactly one "authorization: Bearer <token>"`));
      }
      const entry = findToken(tokens, token);
      if (entry === undefined) {
        if (renewing !== undefined) {
          const why = 'token revoked while its call was open';
          return refuse(
            renewing,
            why,
            new UnauthenticatedError('token revoked: it was removed from the auth file while this call was open'),
          );
        }
        limiter.recordFailure(caller.peer);
        return refuse('anonymous', 'unknown token', new UnauthenticatedError('unknown or revoked token'));
      }
      return { name: `token:${entry.name}`, role: entry.role };
    }

    if (caller.certificate !== undefined) {
      const names = certificateNames(caller.certificate);
      const entry = findCertificate(certificates, names);
      if (entry !== undefined) return { name: `cert:${describeMatch(entry)}`, role: entry.role };
      const shown = names.cn.length > 0 ? names.cn.map((cn) => `CN=${cn}`).join(',') : (names.san[0] ?? 'no subject name');
      const why =
        names.cn.length > 1
          ? `client certificate ${shown} has more than one CN, so no "cn" entry names it, and no "san" entry matched`
          : `client certificate ${shown} is not in the auth file`;
      return refuse(`cert:${shown}`, why, new UnauthenticatedError(`${why}, and no bearer token was sent`));
    }
    return refuse('anonymous', 'no credentials', new UnauthenticatedError('no credentials: send "authorization: Bearer <token>" metadata'));
  };

  const held = new Set<RoleAccess>();
  // Counts the reloads: an access made before the latest one identifies its caller again before its next check.
  let generation = 0;
  return {
    authenticate: (caller) =>
      new RoleAccess(identify(caller), caller, audit, {
        identify: (was) => identify(caller, was),
        held,
        generation: () => generation,
      }),
    renewHeld: () => {
      generation++;
      for (const access of [...held]) access.renew();
    },
    flushAudit: () => rateLimited.flushAll(),
  };
}

/** How a RoleAccess is checked again after a reload, and the set of those that are. */
interface Renewal {
  identify: (was: string) => Identity;
  held: Set<RoleAccess>;
  /** How many reloads there have been. */
  generation: () => number;
}

/**
 * One call's permissions under one role; remembers the admin permissions it
 * granted, to audit them with the outcome, and every key and prefix
 * permission, to check them again if the call holds its access over a reload.
 */
class RoleAccess implements Access {
  private readonly adminTargets: { target: AccessTarget; carriedOut?: () => boolean }[] = [];
  private readonly granted: { permission: Permission; target: { key: string } | { prefix: string } }[] = [];
  private revoked: ((error: Error) => void) | undefined;
  /** The reload `identity` was found under. */
  private generation: number;
  readonly restricted = true;

  constructor(
    private identity: Identity,
    private readonly caller: Caller,
    private readonly audit: Audit,
    private readonly renewal: Renewal,
  ) {
    this.generation = renewal.generation();
  }

  key(permission: Permission, key: string): void {
    this.check(permission, { key }, (grant) => key.startsWith(grant));
    this.granted.push({ permission, target: { key } });
  }

  /** Allowed only if one grant covers the whole prefix: a wider prefix is denied, never narrowed to what the role may see. */
  prefix(permission: Permission, prefix: string, carriedOut?: () => boolean): void {
    this.check(permission, { prefix }, (grant) => prefix.startsWith(grant), { prefix }, true, carriedOut);
    this.granted.push({ permission, target: { prefix } });
  }

  leaseKeys(permission: Permission, lease: number, keys: readonly string[]): void {
    for (const key of keys) this.check(permission, { lease }, (grant) => key.startsWith(grant), { key });
  }

  somePrefix(permission: Permission): void {
    this.check(permission, { somePrefix: true }, () => true);
  }

  hold(revoked: (error: Error) => void): () => void {
    this.revoked = revoked;
    this.renewal.held.add(this);
    // A reload came between the credentials' check and now (the HTTP port checks them before the body arrives,
    // which a client may hold back): check again at once, as the reload would have.
    if (this.generation !== this.renewal.generation()) this.renew();
    return () => {
      this.revoked = undefined;
      this.renewal.held.delete(this);
    };
  }

  /** The auth file was reloaded: the caller as it is now, and what it was granted, checked again. */
  renew(): void {
    try {
      this.generation = this.renewal.generation();
      this.identity = this.renewal.identify(this.identity.name);
      for (const { permission, target } of this.granted) {
        const covers = (grant: string): boolean => ('key' in target ? target.key : target.prefix).startsWith(grant);
        this.check(permission, target, covers, target, false);
      }
    } catch (error) {
      const revoked = this.revoked;
      this.renewal.held.delete(this);
      this.revoked = undefined;
      try {
        revoked?.(error as Error);
      } catch {
        // Ending one call must not stop the others' renewal (renewHeld goes on with the next).
      }
    }
  }

  finished(code: status): void {
    for (const { target, carriedOut } of this.adminTargets) {
      if (carriedOut?.() !== false) this.audit.admin({ ...this.entry(code), ...shownTarget(target), permission: 'admin' });
    }
  }

  /**
   * `logged`: what the audit log names instead of the target (the key of a lease the caller is not told);
   * `first`: false when an earlier grant is checked again, which is not another admin action;
   * `carriedOut`: see Access.prefix.
   */
  private check(
    permission: Permission,
    target: AccessTarget,
    covers: (grantPrefix: string) => boolean,
    logged: AccessTarget = target,
    first = true,
    carriedOut?: () => boolean,
  ): void {
    // A reload since this caller was identified (a call whose credentials were checked before its body came):
    // who it is now, by the file as loaded now (UnauthenticatedError if its token is gone).
    if (this.generation !== this.renewal.generation()) {
      this.generation = this.renewal.generation();
      this.identity = this.renewal.identify(this.identity.name);
    }
    const { role } = this.identity;
    const needed = PERMISSIONS.indexOf(permission);
    if (!role.grants.some((grant) => PERMISSIONS.indexOf(grant.permission) >= needed && covers(grant.prefix))) {
      this.audit.denied(
        {
          ...this.entry(status.PERMISSION_DENIED),
          ...shownTarget(logged),
          ...('lease' in target ? { lease: target.lease } : {}),
          permission,
        },
        `role ${JSON.stringify(role.name)} does not grant ${permission}`,
      );
      throw new PermissionDeniedError(permission, target);
    }
    if (permission === 'admin' && first) this.adminTargets.push({ target, carriedOut });
  }

  private entry(code: status): AuditEntry {
    return { identity: this.identity.name, peer: this.caller.peer, method: this.caller.method, code };
  }
}

/** The target's fields in an audit line: none for "some prefix" (the method says what was asked for). */
function shownTarget(target: AccessTarget): { key: string } | { prefix: string } | { lease: number } | Record<string, never> {
  if ('somePrefix' in target) return {};
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

/**
 * The first entry, in file order, that names the certificate. A "cn" entry
 * names only a certificate whose subject has that one CN: with several, which
 * one is the identity would be a guess.
 */
function findCertificate(entries: readonly CertificateEntry[], names: CertificateNames): CertificateEntry | undefined {
  const cn = names.cn.length === 1 ? names.cn[0] : undefined;
  return entries.find(({ match }) => ('cn' in match ? match.cn === cn : names.san.includes(match.san)));
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

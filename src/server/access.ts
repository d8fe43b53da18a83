/**
 * What the caller of one call may do. Every handler asks before it touches
 * a key or a prefix (and before anything is decided), so a denied call
 * changes nothing. The transport adapter builds one per call from the
 * caller's credentials; with no authentication configured every call gets
 * openAccess.
 */
import type { status } from '@grpc/grpc-js';

/** Each permission includes the ones before it: write can read, admin can write. */
export type Permission = 'read' | 'write' | 'admin';

export const PERMISSIONS: readonly Permission[] = ['read', 'write', 'admin'];

export interface Access {
  /** Throws PermissionDeniedError unless the caller may `permission` this key. */
  key(permission: Permission, key: string): void;
  /**
   * Throws PermissionDeniedError unless the caller may `permission` every key under this prefix ('' = every key).
   * `carriedOut`: for an admin action that may not happen (a Clear in a Txn branch), asked when the call is
   * answered; false: it did not happen, and is not audited as an admin action.
   */
  prefix(permission: Permission, prefix: string, carriedOut?: () => boolean): void;
  /**
   * Throws PermissionDeniedError unless the caller may `permission` every
   * one of `keys`, the keys attached to lease `lease`. The error names the
   * lease, never the key: a caller must not learn the names of keys it may
   * not read from a lease it can name.
   */
  leaseKeys(permission: Permission, lease: number, keys: readonly string[]): void;
  /**
   * Throws PermissionDeniedError unless the caller's role grants `permission`
   * on at least one prefix (GrantLease: a lease is of use only to attach keys
   * to, which needs write).
   */
  somePrefix(permission: Permission): void;
  /**
   * For a call that stays open (Watch, KeepAlive): from now until `release`
   * is called, each reload of the auth file authenticates the caller again,
   * with the credentials it started with, and checks again every key and
   * prefix permission granted so far; later checks use the role found then.
   * If the caller no longer may, `revoked` is called with the error
   * (UnauthenticatedError, PermissionDeniedError), once.
   */
  hold(revoked: (error: Error) => void): () => void;
  /** False when every caller may do everything (no --auth-file): a handler need not fetch what it would check. */
  readonly restricted: boolean;
  /**
   * The adapter calls this once the call has been answered, with its status
   * code (0 = OK), so admin actions can be audited with their outcome. A
   * streaming call reports when the stream ends.
   */
  finished(code: status): void;
}

export const openAccess: Access = {
  key: () => undefined,
  prefix: () => undefined,
  leaseKeys: () => undefined,
  somePrefix: () => undefined,
  hold: () => () => undefined,
  restricted: false,
  finished: () => undefined,
};

/** The call carried no credentials the server accepts. UNAUTHENTICATED. */
export class UnauthenticatedError extends Error {
  readonly code = 'UNAUTHENTICATED';
}

/**
 * The caller's role lacks `permission` on a key or prefix. Raised before the
 * store is asked anything, so it never tells whether a key exists.
 */
export class PermissionDeniedError extends Error {
  readonly code = 'PERMISSION_DENIED';
  constructor(
    readonly permission: Permission,
    readonly target: AccessTarget,
  ) {
    super(
      'lease' in target
        ? `permission denied: ${permission} on every key attached to lease ${target.lease} is needed and this caller's role does not grant it on all of them`
        : 'somePrefix' in target
          ? `permission denied: ${permission} on some prefix is needed (a lease is of use only to attach keys to) and this caller's role grants it on none`
          : `permission denied: ${permission} on ${'key' in target ? `key ${JSON.stringify(shown(target.key))}` : `prefix ${JSON.stringify(shown(target.prefix))}`} is needed and this caller's role does not grant it`,
    );
  }
}

/** What a permission is checked on: a key, every key under a prefix, every key attached to a lease, or any prefix at all. */
export type AccessTarget = { key: string } | { prefix: string } | { lease: number } | { somePrefix: true };

/**
 * A key or prefix as messages and audit lines show it. Access is decided
 * before the key size limit is checked, so a refused caller's key can be
 * megabytes long: its start is enough to name it, and a log stays readable.
 */
export function shown(keyOrPrefix: string): string {
  const head = Array.from(keyOrPrefix.slice(0, 2 * SHOWN_CHARACTERS))
    .slice(0, SHOWN_CHARACTERS)
    .join('');
  return head.length < keyOrPrefix.length ? `${head}…` : keyOrPrefix;
}

const SHOWN_CHARACTERS = 200;

/** Too many failed authentications from the caller's address. RESOURCE_EXHAUSTED. */
export class AuthRateLimitedError extends Error {
  readonly code = 'AUTH_RATE_LIMITED';
  constructor(readonly retryAfterMs: number) {
    super(`too many failed authentications from this address; retry in ${Math.ceil(retryAfterMs / 1000)} s`);
  }
}

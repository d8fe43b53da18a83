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
  /** Throws PermissionDeniedError unless the caller may `permission` every key under this prefix ('' = every key). */
  prefix(permission: Permission, prefix: string): void;
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
    readonly target: { key: string } | { prefix: string },
  ) {
    const what = 'key' in target ? `key ${JSON.stringify(shown(target.key))}` : `prefix ${JSON.stringify(shown(target.prefix))}`;
    super(`permission denied: ${permission} on ${what} is needed and this caller's role does not grant it`);
  }
}

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

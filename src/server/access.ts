/**
 * What the caller of one call may do. Every handler asks before it touches
 * a key or a prefix (and before anything is decided), so a denied call
 * changes nothing. The transport adapter builds one per call from the
 * caller's credentials; with no authentication configured every call gets
 * openAccess.
 */

export type Permission = 'read' | 'write' | 'admin';

export interface Access {
  /** Throws (a status-mapped error) unless the caller may `permission` this key. */
  key(permission: Permission, key: string): void;
  /** Throws unless the caller may `permission` every key under this prefix ('' = every key). */
  prefix(permission: Permission, prefix: string): void;
}

export const openAccess: Access = {
  key: () => undefined,
  prefix: () => undefined,
};

/**
 * The audit trail: one JSON line per denied call and per admin action, with
 * who (identity), from where (peer), what (method, key or prefix,
 * permission) and the outcome (status code name); calls refused because
 * their address is rate-limited are summed up per address (`calls`). Never a token, never a
 * value. Written whatever --log-level says (only "silent" silences it), so
 * turning logs down does not turn auditing off.
 */
import { status } from '@grpc/grpc-js';
import type { Logger } from '../logger';
import type { Permission } from '../server/access';

export interface AuditEntry {
  /** "token:NAME", "cert:CN=... " or "anonymous". */
  identity: string;
  /** The caller's address and port; for refusals summed up (`calls`), the address (IPv6: its /64). */
  peer: string;
  /** Absent from a line that sums up refusals of several calls. */
  method?: string;
  key?: string;
  prefix?: string;
  /** A lease whose keys were checked (the key named is the one denied). */
  lease?: number;
  permission?: Permission;
  code: status;
  /** A line for several calls refused alike (calls from a rate-limited address): how many. */
  calls?: number;
}

export interface Audit {
  denied(entry: AuditEntry, why: string): void;
  admin(entry: AuditEntry): void;
}

export function createAudit(logger: Logger): Audit {
  const audit = logger.child({}, { level: logger.level === 'silent' ? 'silent' : 'info' });
  const line = (event: 'denied' | 'admin', { code, ...entry }: AuditEntry): object => ({ audit: event, ...entry, code: status[code] });
  return {
    denied: (entry, why) => audit.warn(line('denied', entry), why),
    admin: (entry) => audit.info(line('admin', entry), 'admin action'),
  };
}

import type { JsonValue, KvEntry } from '@kv/client';

/** The table header of an entry (get, get --prefix, update). */
export const ENTRY_HEADER = ['KEY', 'VERSION', 'CREATE_REVISION', 'MOD_REVISION', 'LEASE', 'VALUE'];

/** An entry as JSON: its lease only if it is on one (as watch prints it, and as grpcurl leaves out a 0). */
export function entryJson({ key, value, createRevision, modRevision, version, lease }: KvEntry<JsonValue>): Record<string, unknown> {
  const json: Record<string, unknown> = { key, value, createRevision, modRevision, version };
  if (lease !== 0) json.lease = lease;
  return json;
}

/** An entry as a row under ENTRY_HEADER: the LEASE cell empty if it is on none. */
export function entryRow({ key, value, createRevision, modRevision, version, lease }: KvEntry<JsonValue>): string[] {
  return [key, String(version), String(createRevision), String(modRevision), lease === 0 ? '' : String(lease), JSON.stringify(value)];
}

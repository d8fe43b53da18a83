import type { SetRequest, SetResponse } from '../../gen/kv/v1/kv';
import { validateKey } from '../../store/key-rules';
import type { JsonValue } from '../../store/key-value-store';
import type { JsonText } from '../../store/value-rules';
import type { CallContext } from '../call-context';
import { InvalidArgumentError } from '../service-errors';
import { checkExpectedRevision } from './expected-revision';
import { checkWriteOnLeaseKeys } from './leases';

/**
 * Set: stores a JSON value (compare-and-set with expected_revision; a lease or a ttl).
 * Not async: the store's promise is the call's, one promise and one microtask
 * fewer per call on the busiest path; the adapters turn a synchronous throw
 * (a refused key, a missing value) into the call's error like a rejection.
 */
export function handleSet({ store, access }: CallContext, request: SetRequest): Promise<SetResponse> {
  access.key('write', request.key);
  checkExpectedRevision(request.expectedRevision);
  const { lease, ttlMs } = request;
  const set = (): Promise<SetResponse> =>
    store.set(request.key, requiredValue(request), {
      expectedRevision: request.expectedRevision,
      lease: lease === 0 ? undefined : lease,
      ttlMs: ttlMs === 0 ? undefined : ttlMs,
    });
  // Attaching a key to a lease also needs write on the keys already attached to it (leases.ts).
  if (access.restricted && lease !== 0) return checkWriteOnLeaseKeys(store, access, lease).then(set);
  return set();
}

/** An absent google.protobuf.Value decodes to undefined; JSON null is a real value. */
export function requiredValue({ key, value }: SetRequest): JsonValue | JsonText {
  if (value === undefined) {
    // A request with neither (`{}`) is refused for its key first, as one with a value would be (its size is the store's to check).
    validateKey(key, Number.MAX_SAFE_INTEGER);
    throw new InvalidArgumentError(`value is required for key ${JSON.stringify(key)} (JSON null is a value)`, 'INVALID_VALUE');
  }
  return value as JsonValue | JsonText;
}

/** lease and ttl_ms as store options: 0 is "none" on the wire. */
export function leaseOptions({ lease, ttlMs }: SetRequest): { lease?: number; ttlMs?: number } {
  return { lease: lease === 0 ? undefined : lease, ttlMs: ttlMs === 0 ? undefined : ttlMs };
}

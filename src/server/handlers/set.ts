import type { SetRequest, SetResponse } from '../../gen/kv/v1/kv';
import type { JsonValue } from '../../store/key-value-store';
import type { CallContext } from '../call-context';
import { InvalidArgumentError } from '../service-errors';
import { checkExpectedRevision } from './expected-revision';

/** Set: stores a JSON value (compare-and-set with expected_revision). */
export async function handleSet({ store, access }: CallContext, { key, value, expectedRevision }: SetRequest): Promise<SetResponse> {
  access.key('write', key);
  checkExpectedRevision(expectedRevision);
  // An absent google.protobuf.Value decodes to undefined; JSON null is a real value.
  if (value === undefined) throw new InvalidArgumentError(`value is required for key ${JSON.stringify(key)} (JSON null is a value)`);
  return store.set(key, value as JsonValue, { expectedRevision });
}

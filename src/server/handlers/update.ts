import type { UpdateRequest } from '../../gen/kv/v1/kv';
import { validateKey } from '../../store/key-rules';
import type { Entry, JsonValue } from '../../store/key-value-store';
import type { CallContext } from '../call-context';
import { InvalidArgumentError } from '../service-errors';
import { checkExpectedRevision } from './expected-revision';

/** Update: merges a JSON merge patch into a key's value on the server; answers the new entry. */
export async function handleUpdate({ store, access, deadline }: CallContext, request: UpdateRequest): Promise<{ entry: Entry }> {
  access.key('write', request.key);
  checkExpectedRevision(request.expectedRevision);
  const entry = await store.update(request.key, requiredPatch(request), {
    expectedRevision: request.expectedRevision,
    createIfMissing: request.createIfMissing,
    deadline,
  });
  return { entry };
}

export function requiredPatch({ key, patch }: UpdateRequest): JsonValue {
  if (patch === undefined) {
    validateKey(key, Number.MAX_SAFE_INTEGER);
    throw new InvalidArgumentError(`patch is required for key ${JSON.stringify(key)} (JSON null is a patch)`, 'INVALID_VALUE');
  }
  return patch as JsonValue;
}

import type { DeleteRequest, DeleteResponse } from '../../gen/kv/v1/kv';
import type { CallContext } from '../call-context';
import { checkExpectedRevision } from './expected-revision';

/** Delete: removes a key; a missing key is deleted=false, not an error. */
export async function handleDelete({ store, access }: CallContext, { key, expectedRevision }: DeleteRequest): Promise<DeleteResponse> {
  access.key('write', key);
  checkExpectedRevision(expectedRevision);
  return store.delete(key, { expectedRevision });
}

import type { GetRequest, GetResponse } from '../../gen/kv/v1/kv';
import type { CallContext } from '../call-context';
import { KeyNotFoundError } from '../../store/errors';

/** Get: the entry under a key; NOT_FOUND if there is none. */
export async function handleGet({ store, access }: CallContext, { key }: GetRequest): Promise<GetResponse> {
  access.key('read', key);
  const entry = await store.get(key);
  if (entry === undefined) throw new KeyNotFoundError(key);
  return { entry };
}

import type { GetRequest, GetResponse } from '../../gen/kv/v1/kv';
import type { CallContext } from '../call-context';
import { KeyNotFoundError } from '../../store/errors';

/** Get: the entry under a key; NOT_FOUND if there is none. Not async, as handleSet (handlers/set.ts) says why. */
export function handleGet({ store, access }: CallContext, { key }: GetRequest): Promise<GetResponse> {
  access.key('read', key);
  return store.get(key).then((entry) => {
    if (entry === undefined) throw new KeyNotFoundError(key);
    return { entry };
  });
}

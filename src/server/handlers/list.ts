import type { ListRequest } from '../../gen/kv/v1/kv';
import type { CallContext } from '../call-context';
import { encodePageToken } from '../page-token';
import type { ListPage } from '../wire/encode-responses';
import { pageRequest } from './list-keys';

/** List: one page of entries (keys with values) under a prefix, read at one revision. */
export async function handleList({ store, access }: CallContext, request: ListRequest): Promise<ListPage> {
  access.prefix('read', request.prefix);
  const { startAfter, limit } = pageRequest(request);
  const { entries, more, revision } = await store.list({ prefix: request.prefix, startAfter, limit });
  const nextPageToken = more && entries.length > 0 ? encodePageToken(request.prefix, entries[entries.length - 1].key) : '';
  return { entries, nextPageToken, revision };
}

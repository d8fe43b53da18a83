import type { ListKeysRequest, ListKeysResponse } from '../../gen/kv/v1/kv';
import type { CallContext } from '../call-context';
import { decodePageToken, encodePageToken } from '../page-token';
import { InvalidArgumentError } from '../service-errors';

const DEFAULT_PAGE_SIZE = 100;
const MAX_PAGE_SIZE = 1000;

/** ListKeys: one page of keys under a prefix (AIP-158 paging). */
export async function handleListKeys({ store, access }: CallContext, request: ListKeysRequest): Promise<ListKeysResponse> {
  access.prefix('read', request.prefix);
  const { startAfter, limit } = pageRequest(request);
  const { keys, more, revision } = await store.listKeys({ prefix: request.prefix, startAfter, limit });
  const nextPageToken = more && keys.length > 0 ? encodePageToken(request.prefix, keys[keys.length - 1]) : '';
  return { keys, nextPageToken, revision };
}

/** page_size and page_token of ListKeys and List (AIP-158): where to resume and how many to take. */
export function pageRequest({ prefix, pageSize, pageToken }: ListKeysRequest): { startAfter: string | undefined; limit: number } {
  if (pageSize < 0) throw new InvalidArgumentError(`page_size must not be negative (got ${pageSize})`);
  const limit = pageSize === 0 ? DEFAULT_PAGE_SIZE : Math.min(pageSize, MAX_PAGE_SIZE);
  const startAfter = pageToken === '' ? undefined : decodePageToken(pageToken, prefix);
  return { startAfter, limit };
}

import { fieldSize, measureEntry } from '@kv/client/wire';
import type { ListRequest } from '../../gen/kv/v1/kv';
import type { Entry } from '../../store/key-value-store';
import type { CallContext } from '../call-context';
import { encodePageToken } from '../page-token';
import type { ListPage } from '../wire/encode-responses';
import { pageRequest } from './list-keys';

/**
 * A page ends early, with a next_page_token, once its entries pass this many
 * bytes as protobuf: half the 64 MiB clients receive by default. Without it,
 * a page of large values (100 of 1 MiB, or fewer that are arrays of numbers,
 * which grow about 5.5 times as google.protobuf.Value) was one no client
 * could read, and paging through them could not get past it.
 */
export const PAGE_BYTE_BUDGET = 32 * 1024 * 1024;

/** List: one page of entries (keys with values) under a prefix, read at one revision. */
export async function handleList({ store, access }: CallContext, request: ListRequest): Promise<ListPage> {
  access.prefix('read', request.prefix);
  const { startAfter, limit } = pageRequest(request);
  const listed = await store.list({ prefix: request.prefix, startAfter, limit });
  const { revision } = listed;
  let { entries, more } = listed;
  const fit = entriesWithin(entries, PAGE_BYTE_BUDGET);
  if (fit < entries.length) {
    entries = entries.slice(0, fit);
    more = true;
  }
  const nextPageToken = more && entries.length > 0 ? encodePageToken(request.prefix, entries[entries.length - 1].key) : '';
  return { entries, nextPageToken, revision };
}

/** How many of the first entries fit in `budget` bytes as protobuf (always at least one). */
function entriesWithin(entries: readonly Entry[], budget: number): number {
  const scratch: number[] = [];
  let used = 0;
  for (let i = 0; i < entries.length; i++) {
    scratch.length = 0;
    used += fieldSize(measureEntry(entries[i], scratch));
    if (used > budget && i > 0) return i;
  }
  return entries.length;
}

import type { ClearRequest, ClearResponse } from '../../gen/kv/v1/kv';
import type { CallContext } from '../call-context';

/** Clear: removes every key under a prefix in one change; bulk removal is an admin action (audited). */
export async function handleClear({ store, access }: CallContext, { prefix }: ClearRequest): Promise<ClearResponse> {
  access.prefix('admin', prefix);
  const { deletedCount, revision } = await store.clear({ prefix });
  return { deletedCount, revision };
}

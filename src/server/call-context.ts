/** What a handler gets besides its request: the store, and what the caller may do. */
import type { KeyValueStore } from '../store/key-value-store';
import type { Access } from './access';

export interface CallContext {
  store: KeyValueStore;
  access: Access;
}

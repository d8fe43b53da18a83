/** What a handler gets besides its request: the store, and what the caller may do. */
import type { KeyValueStore } from '../store/key-value-store';
import type { Access } from './access';

export interface CallContext {
  store: KeyValueStore;
  access: Access;
  /** When the caller stops waiting (ms since the epoch; from grpc-timeout or connect-timeout-ms), if it said. */
  deadline?: number;
}

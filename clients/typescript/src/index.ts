export { KvClient } from './kv-client';
export type { KvClientOptions, KvEntry, JsonValue, RetryOptions, CallOptions, WriteOptions, ServingStatus } from './kv-client';
export { KvError } from './kv-error';
export type { KvErrorReason, ServerErrorReason } from './kv-error';
export { credentials, status } from '@grpc/grpc-js';
export { KvWatch } from './kv-watch';
export type { KvWatchEvent, WatchOptions } from './kv-watch';

export { KvClient } from './kv-client';
export type {
  KvClientOptions,
  RetryOptions,
  CallOptions,
  WriteOptions,
  SetOptions,
  UpdateOptions,
  LeaseInfo,
  ServingStatus,
} from './kv-client';
export type { JsonValue, JsonCompatible, KvEntry } from './kv-entry';
export { KvError } from './kv-error';
export type { KvErrorReason, ServerErrorReason } from './kv-error';
export { credentials, status } from '@grpc/grpc-js';
export { KvWatch } from './kv-watch';
export type { KvWatchEvent, WatchOptions } from './kv-watch';
export { Compare, Op, TxnBuilder } from './kv-txn';
export type { CompareOp, TxnCompare, TxnOp, TxnOpResult, TxnResult } from './kv-txn';
export type { KeepAliveHandle } from './kv-lease';

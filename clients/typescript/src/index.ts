export { KvClient } from './kv-client';
export { isLoopbackAddress } from './wire/loopback';
export type {
  KvClientOptions,
  RetryOptions,
  CallOptions,
  WriteOptions,
  SetOptions,
  UpdateOptions,
  LeaseInfo,
  LeaseStatus,
  ServingStatus,
  BackupOptions,
} from './kv-client';
export { BackupFileReader, verifyBackupFile, BACKUP_FORMAT_VERSION } from './backup/backup-file';
export type { BackupSummary, BackupProgress, BackupEntry, BackupHeader, BackupLease } from './backup/backup-file';
export type { BackupDestination } from './backup/write-backup-file';
export type { JsonValue, JsonCompatible, KvEntry } from './kv-entry';
export { KvError } from './kv-error';
export type { KvErrorReason, ServerErrorReason } from './kv-error';
export { credentials, status } from '@grpc/grpc-js';
export { KvWatch } from './kv-watch';
export type { KvWatchEvent, WatchCommonOptions, WatchKey, WatchOptions, WatchPrefix, WatchResumeChange } from './kv-watch';
export { Compare, Op, TxnBuilder } from './kv-txn';
export type { CompareOp, TxnCompare, TxnOp, TxnOpResult, TxnResult } from './kv-txn';
export type { KeepAliveHandle, KeepAliveOptions, KeepAliveResumeChange } from './kv-lease';

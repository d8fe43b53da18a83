export { FileStore, openFileStore, type FileStoreOptions } from './file-store';
export type { CompactionOptions } from './compact';
export type { FsyncMode } from './log-writer';

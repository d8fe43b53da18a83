import path from 'node:path';
import type { BackupProgress, BackupSummary } from '@kv/client';
import { CliError } from './cli-error';

/** What kvctl restore uses of the server's restore module (src/restore/restore-data-dir.ts; a test checks the two agree). */
export interface ServerRestore {
  restoreDataDir: (
    file: string,
    dataDir: string,
    options?: { onProgress?: (phase: 'checking' | 'writing', progress: BackupProgress) => void },
  ) => Promise<BackupSummary>;
  RestoreTargetError: abstract new (...args: never[]) => Error;
}

/**
 * Restoring writes the file engine's data format, which only the server's
 * own code writes. kvctl ships in the kv package beside the server, so it
 * loads that code from there: from kvctl's src/ (run through tsx) the
 * server's src/, from its dist/ the server's dist/.
 */
export async function loadServerRestore(): Promise<ServerRestore> {
  const tree = path.basename(__dirname);
  const modulePath = path.resolve(__dirname, '..', '..', '..', tree, 'restore', 'restore-data-dir');
  try {
    return (await import(modulePath)) as ServerRestore;
  } catch (error) {
    throw new CliError(
      `kvctl restore runs the kv server's restore code, which is not installed beside this kvctl (${(error as Error).message}); use kv-server --restore-from FILE --data-dir DIR`,
    );
  }
}

/**
 * Node names no file in an error from a call on a file descriptor (write,
 * fsync, fdatasync...): "ENOSPC: no space left on device, write". Where
 * such an error can stop the server (start-up), the file is added to it
 * as Node adds it to an open's: "ENOSPC: no space left on device, write
 * '/var/lib/kv/history-id.tmp'", and as its `path`.
 */

/** Runs `fn`; a system error without a path that it throws is given `file` as its path. */
export function namingFile<T>(file: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (err instanceof Error && typeof e.code === 'string' && typeof e.syscall === 'string' && e.path === undefined) {
      e.path = file;
      e.message = `${e.message} '${file}'`;
    }
    throw err;
  }
}

import { SingleBar } from 'cli-progress';
import type { BackupProgress } from '@kv/client';

export interface ProgressBar {
  update(progress: BackupProgress): void;
  stop(): void;
}

/** A progress bar of keys (and MiB) on stderr, for a person at a terminal; nothing otherwise (scripts, pipes). */
export function progressBar(stderr: NodeJS.WritableStream & { isTTY?: boolean }, label: string): ProgressBar {
  if (stderr.isTTY !== true) return { update: () => undefined, stop: () => undefined };
  const bar = new SingleBar({
    format: `${label} {bar} {percentage}% | {value}/{total} keys | {mib} MiB`,
    stream: stderr,
    hideCursor: true,
    clearOnComplete: true,
    barsize: 30,
  });
  let started = false;
  return {
    update: ({ keys, keyCount, bytes }) => {
      const mib = (bytes / 1048576).toFixed(1);
      if (!started && keyCount !== undefined) {
        bar.start(Math.max(keyCount, 1), 0, { mib });
        started = true;
      }
      if (started) bar.update(keys, { mib });
    },
    stop: () => {
      if (started) bar.stop();
      started = false;
    },
  };
}

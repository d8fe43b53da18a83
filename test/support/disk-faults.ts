/**
 * Real disk faults for tests: a small tmpfs to fill (ENOSPC) and the
 * immutable attribute (chattr +i: EPERM on every write). Both need root (or
 * CAP_SYS_ADMIN, CAP_LINUX_IMMUTABLE and a filesystem with the attribute).
 * Where the machine cannot, the tests that need them are skipped with the
 * reason printed, unless KV_REQUIRE_DISK_FAULTS=1 (set by .ci/run): there a
 * missing capability is a failure, not a skip.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { makeTempDir } from './temp-dirs';

/** A mounted tmpfs of a fixed size; unmount() removes it and its mount point. */
export interface SmallDisk {
  dir: string;
  unmount(): void;
}

export function mountSmallDisk(bytes: number): SmallDisk {
  const dir = makeTempDir('kv-small-disk-');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    dir,
    unmount() {
      execFileSync('umount', [dir], { stdio: 'pipe' });
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function setImmutable(file: string, immutable: boolean): void {
  execFileSync('chattr', [immutable ? '+i' : '-i', file], { stdio: 'pipe' });
}

/** `test` if a small tmpfs can be mounted here, otherwise `test.skip` with the reason printed once. */
export function testWithSmallDisk(): jest.It {
  return testIfPossible('a small tmpfs (mount -t tmpfs)', () => mountSmallDisk(64 * 1024).unmount());
}

/** `test` if chattr +i makes a file in the temp directory refuse writes, otherwise `test.skip` with the reason. */
export function testWithImmutableFiles(): jest.It {
  return testIfPossible('immutable files (chattr +i)', () => {
    const dir = makeTempDir('kv-immutable-');
    const file = path.join(dir, 'probe');
    fs.writeFileSync(file, '');
    try {
      setImmutable(file, true);
      try {
        fs.appendFileSync(file, 'x');
        throw new Error('chattr +i did not make the file refuse writes');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EPERM') throw err;
      } finally {
        setImmutable(file, false);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}

function testIfPossible(what: string, probe: () => void): jest.It {
  try {
    probe();
    return test;
  } catch (err) {
    const reason = err instanceof Error ? err.message.split('\n')[0] : String(err);
    if (process.env.KV_REQUIRE_DISK_FAULTS === '1') {
      throw new Error(`${what} is required (KV_REQUIRE_DISK_FAULTS=1) but does not work here: ${reason}`, { cause: err });
    }
    process.stdout.write(`skipping tests that need ${what}: ${reason}\n`);
    return test.skip;
  }
}

/**
 * What a server process has used, from /proc/PID: CPU time (all threads,
 * user + system), sampled around each run to give server CPU per call, a
 * figure much less sensitive to a noisy neighbour than throughput; and
 * resident memory, now and at its peak.
 */
import { readFileSync } from 'node:fs';

/** Linux USER_HZ; 100 on every mainstream kernel build. */
const TICKS_PER_SECOND = 100;

export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces; count fields after its ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return (utime + stime) / TICKS_PER_SECOND;
  } catch {
    return Number.NaN;
  }
}

export interface Memory {
  /** Resident set now (VmRSS), bytes. It counts the pages of memory-mapped files in use too (etcd's bbolt database). */
  rssBytes: number;
  /** The highest resident set so far (VmHWM), bytes. */
  peakRssBytes: number;
}

export function memoryOf(pid: number): Memory {
  const kib = (status: string, field: string): number => {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    return match ? Number(match[1]) * 1024 : Number.NaN;
  };
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return { rssBytes: kib(status, 'VmRSS'), peakRssBytes: kib(status, 'VmHWM') };
  } catch {
    return { rssBytes: Number.NaN, peakRssBytes: Number.NaN };
  }
}

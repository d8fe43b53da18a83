/**
 * CPU time a process has used (all threads, user + system), from
 * /proc/PID/stat. Sampled around each run it gives server CPU per call, a
 * figure much less sensitive to a noisy neighbour than throughput.
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

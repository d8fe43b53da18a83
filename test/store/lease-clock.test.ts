/**
 * LeaseClock: one timer, armed for the earliest deadline. A time to live
 * longer than setTimeout takes (2^31 - 1 ms, about 24.8 days; the API allows
 * a year) must not make the timer fire every millisecond.
 */
import { EXPIRY_CHUNK, LeaseClock } from '../../src/store/file/lease-clock';

const DAY_MS = 24 * 3600 * 1000;

/** A clock whose time is `time.now`, set by the test (its timer is real, armed for that many real milliseconds). */
function clockAtTime(): { clock: LeaseClock; expired: number[][]; time: { now: number } } {
  const expired: number[][] = [];
  const time = { now: 0 };
  const clock = new LeaseClock(
    (ids) => void expired.push(ids),
    () => time.now,
  );
  return { clock, expired, time };
}

test('a lease of 30 days costs no timer wake-ups while it runs (Node would fire an over-long timeout after 1 ms)', async () => {
  const expired: number[][] = [];
  let reads = 0;
  const clock = new LeaseClock(
    (ids) => void expired.push(ids),
    () => {
      reads++;
      return performance.now();
    },
  );
  const warnings: Error[] = [];
  const onWarning = (warning: Error): void => void warnings.push(warning);
  process.on('warning', onWarning);
  try {
    clock.arm(1, 30 * DAY_MS);
    clock.arm(2, 365 * DAY_MS);
    const readsAfterArming = reads;
    await new Promise((resolve) => setTimeout(resolve, 200));
    // Each wake-up reads the clock: with the timer firing every millisecond that was about 200 reads.
    expect(reads - readsAfterArming).toBeLessThanOrEqual(1);
    expect(warnings.map((w) => w.name)).not.toContain('TimeoutOverflowWarning');
    expect(expired).toEqual([]);
    expect(clock.remaining(1)).toBeGreaterThan(29 * DAY_MS);
  } finally {
    process.off('warning', onWarning);
    clock.close();
  }
});

test('a deadline past the longest timeout is still met: the capped timer fires early, finds nothing, and arms itself again', () => {
  jest.useFakeTimers();
  const expired: number[][] = [];
  const clock = new LeaseClock(
    (ids) => void expired.push(ids),
    () => Date.now(),
  );
  try {
    clock.arm(7, 40 * DAY_MS);
    jest.advanceTimersByTime(39 * DAY_MS);
    expect(expired).toEqual([]);
    expect(clock.remaining(7)).toBe(DAY_MS);
    jest.advanceTimersByTime(DAY_MS - 1);
    expect(expired).toEqual([]);
    jest.advanceTimersByTime(1);
    expect(expired).toEqual([[7]]);
  } finally {
    clock.close();
    jest.useRealTimers();
  }
});

test('a keep-alive after the deadline, before the timer (a moment late) fires, does not bring the lease back: it expires then', () => {
  const { clock, expired, time } = clockAtTime();
  try {
    clock.arm(7, 100);
    expect(clock.refresh(7, 100)).toBe(true);
    time.now = 150; // past the deadline (100); the real timer, armed for 100 ms of real time, has not fired
    expect(clock.refresh(7, 100)).toBe(false);
    expect(expired).toEqual([[7]]);
    expect(clock.isExpiring(7)).toBe(true);
    expect(clock.remaining(7)).toBe(0);
  } finally {
    clock.close();
  }
});

test('leases that run out together expire a chunk at a time, and a keep-alive of one past its deadline finds it expiring, whatever its chunk', async () => {
  const { clock, expired, time } = clockAtTime();
  try {
    const count = 3 * EXPIRY_CHUNK;
    // Deadlines a millisecond apart, in id order: the clock takes them earliest first, so the last lease comes in the last chunk.
    for (let id = 1; id <= count; id++) clock.arm(id, 1000 + id);
    time.now = 10_000;
    // Every deadline has passed. A keep-alive of the last lease must not renew it, and must find it on its way out (the store
    // then waits for its expiry to commit before it answers "not found"), though the clock has not reached its chunk.
    expect(clock.refresh(count, 1000)).toBe(false);
    expect(clock.isExpiring(count)).toBe(true);
    // The others: one chunk now, the rest as the event loop turns.
    expect(expired.map((ids) => ids.length)).toEqual([1, EXPIRY_CHUNK]);
    const deadline = Date.now() + 5000;
    while (expired.flat().length < count && Date.now() < deadline) await new Promise((resolve) => setImmediate(resolve));
    expect(expired.slice(2).map((ids) => ids.length)).toEqual([EXPIRY_CHUNK, EXPIRY_CHUNK - 1]);
    expect(new Set(expired.flat()).size).toBe(count);
  } finally {
    clock.close();
  }
});

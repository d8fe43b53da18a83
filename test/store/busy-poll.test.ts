/**
 * Busy polling (src/store/file/busy-poll.ts): in fsync=always mode the event
 * loop keeps an immediate pending (libuv then polls without sleeping) through
 * a batch's fdatasync and for the window after its callers are answered, and
 * then stops; other modes, and a window of 0, never poll.
 */
import { openFileStore } from '../../src/store/file';
import { BusyPoll } from '../../src/store/file/busy-poll';
import { tempDataDirs } from '../support/temp-dirs';

const dirs = tempDataDirs();
afterAll(() => dirs.cleanup());

const polling = (): boolean => process.getActiveResourcesInfo().includes('Immediate');

/** Waits (on timers, which do not keep an immediate pending) until the loop stops polling; fails past `deadlineMs`. */
async function pollingStops(deadlineMs: number): Promise<number> {
  const started = performance.now();
  while (polling()) {
    if (performance.now() - started > deadlineMs) throw new Error(`still polling after ${deadlineMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  return performance.now() - started;
}

test('hold() keeps the loop polling for its window, a second hold() extends it, and then it stops', async () => {
  await pollingStops(5_000);
  // A window far longer than the 20 ms waited inside it: on a loaded machine (CI) a 20 ms timer can fire 30 ms late.
  const poll = new BusyPoll(300);
  const started = performance.now();
  poll.hold();
  expect(polling()).toBe(true);
  await new Promise((resolve) => setTimeout(resolve, 20));
  const second = performance.now();
  expect(polling()).toBe(true);
  poll.hold(); // now until 300 ms after this second hold
  await pollingStops(5_000);
  expect(performance.now() - second).toBeGreaterThanOrEqual(300);
  expect(performance.now() - started).toBeGreaterThanOrEqual(320);
});

test('fsync=always: each write leaves the loop polling for the window after it is answered, then it stops', async () => {
  // 400 ms: far longer than a loaded machine may keep this process off the CPU between the answer and the check.
  const store = await openFileStore({ dataDir: dirs.make(), fsync: 'always', busyPollUs: 400_000 });
  try {
    await pollingStops(5_000);
    const answered = performance.now();
    await store.set('a', 1);
    expect(polling()).toBe(true);
    await pollingStops(5_000);
    expect(performance.now() - answered).toBeGreaterThanOrEqual(400);
  } finally {
    await store.close();
  }
});

test.each([
  ['always', 0],
  ['never', 40_000],
  ['interval', 40_000],
] as const)('fsync=%s with a window of %d µs: a write leaves no polling behind', async (fsync, busyPollUs) => {
  const store = await openFileStore({ dataDir: dirs.make(), fsync, busyPollUs });
  try {
    await pollingStops(5_000);
    await store.set('a', 1);
    expect(polling()).toBe(false);
  } finally {
    await store.close();
  }
});

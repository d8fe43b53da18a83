/**
 * --busy-poll-us under --workers: the store owner shares the cores with the
 * workers, so it polls only if told to (docs/operations.md#busy-polling).
 */
import { loadConfig, type Config } from '../../src/config';

function busyPollUs(argv: string[], env: NodeJS.ProcessEnv = {}): number {
  return (loadConfig(argv, env) as Config).busyPollUs;
}

test('one process polls for 500 µs by default', () => {
  expect(busyPollUs([])).toBe(500);
  expect(busyPollUs(['--workers', '1'])).toBe(500);
});

test('under --workers the default is off', () => {
  expect(busyPollUs(['--workers', '2'])).toBe(0);
  expect(busyPollUs([], { KV_WORKERS: '3' })).toBe(0);
});

test('under --workers a window given by flag or environment is kept', () => {
  expect(busyPollUs(['--workers', '2', '--busy-poll-us', '300'])).toBe(300);
  expect(busyPollUs(['--workers', '2'], { KV_BUSY_POLL_US: '200' })).toBe(200);
  expect(busyPollUs(['--workers', '2', '--busy-poll-us', '500'])).toBe(500);
});

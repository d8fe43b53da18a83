/**
 * RefusalLogs (connection-limits.ts): refusals per address said at once,
 * then at most every 10 s with how many, and an address forgotten once its
 * last line is old. One address refused without a pause used to stay first
 * in the map (a line its timer said did not move it), so no address after
 * it was ever forgotten: the map grew with every address refused once.
 */
import { REFUSAL_LOG_EVERY_MS, RefusalLogs } from '../../src/server/connection-limits';

beforeEach(() => jest.useFakeTimers({ now: 1_000_000 }));
afterEach(() => jest.useRealTimers());

test('one address refused every second for ten minutes does not keep every other address refused once', () => {
  const said: Array<[string, number]> = [];
  const logs = new RefusalLogs((address, refused) => said.push([address, refused]));
  for (let second = 0; second < 600; second++) {
    logs.refused('10.0.0.1');
    logs.refused(`2001:db8:${second.toString(16)}::/64`);
    jest.advanceTimersByTime(1000);
  }
  // Only the addresses of about the last interval are kept.
  expect(logs.size).toBeLessThanOrEqual(REFUSAL_LOG_EVERY_MS / 1000 + 2);
  // Every refusal was said, none twice: 600 of the busy address, one of each other.
  const total = (address: string): number => said.filter(([a]) => a === address).reduce((sum, [, n]) => sum + n, 0);
  jest.advanceTimersByTime(REFUSAL_LOG_EVERY_MS);
  expect(total('10.0.0.1')).toBe(600);
  expect(said.filter(([a]) => a !== '10.0.0.1').every(([, n]) => n === 1)).toBe(true);
  expect(said.filter(([a]) => a !== '10.0.0.1')).toHaveLength(600);
  // The busy address is said at most once per interval (and once at once).
  expect(said.filter(([a]) => a === '10.0.0.1').length).toBeLessThanOrEqual(600 / (REFUSAL_LOG_EVERY_MS / 1000) + 2);
});

test('at most so many addresses are kept whatever the pace: the one said longest ago is said and forgotten', () => {
  const said: Array<[string, number]> = [];
  const logs = new RefusalLogs((address, refused) => said.push([address, refused]), 100);
  for (let i = 0; i < 1000; i++) logs.refused(`10.1.${Math.floor(i / 256)}.${i % 256}`);
  expect(logs.size).toBeLessThanOrEqual(101);
  expect(said).toHaveLength(1000);
});

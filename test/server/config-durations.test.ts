/**
 * Durations in milliseconds are read one way: a whole number up to what a
 * Node timer holds (a longer timer fires after 1 ms), 0 only where it means
 * something (--shutdown-grace-ms 0: no grace).
 */
import { type Config, ConfigError, loadConfig } from '../../src/config';

function config(argv: string[], env: NodeJS.ProcessEnv = {}): Config {
  return loadConfig(argv, env) as Config;
}

function refusal(argv: string[], env: NodeJS.ProcessEnv = {}): string {
  try {
    loadConfig(argv, env);
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
  throw new Error(`${argv.join(' ')} was accepted`);
}

test('--shutdown-grace-ms 0 (or KV_SHUTDOWN_GRACE_MS=0) means no grace', () => {
  expect(config(['--shutdown-grace-ms', '0']).shutdownGraceMs).toBe(0);
  expect(config([], { KV_SHUTDOWN_GRACE_MS: '0' }).shutdownGraceMs).toBe(0);
  expect(config([]).shutdownGraceMs).toBe(10_000);
});

test.each([
  ['--shutdown-grace-ms', 0],
  ['--fsync-interval-ms', 1],
  ['--watch-progress-ms', 1],
  ['--etcd-timeout-ms', 1],
])('%s longer than a timer can wait is refused, naming the range', (flag, least) => {
  expect(refusal([flag, '2147483648'])).toBe(`${flag}: "2147483648" is not a number of milliseconds from ${least} to 2147483647`);
  expect(refusal([flag, '1.5'])).toBe(`${flag}: "1.5" is not a number of milliseconds from ${least} to 2147483647`);
  if (least === 1) expect(refusal([flag, '0'])).toBe(`${flag}: "0" is not a number of milliseconds from 1 to 2147483647`);
});

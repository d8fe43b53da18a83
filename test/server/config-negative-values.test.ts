/**
 * A negative number given as a flag's separate argument (`--workers -1`)
 * gets kv's own one-line message naming the flag, as `--workers=-1` does,
 * not parseArgs's "argument is ambiguous ... use '--workers=-XYZ'".
 */
import { ConfigError, loadConfig } from '../../src/config';

function refusal(argv: string[]): string {
  try {
    loadConfig(argv, {});
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
  throw new Error(`${argv.join(' ')} was accepted`);
}

test.each([
  [['--workers', '-1'], '--workers: "-1" is not a positive integer or auto'],
  [['--fsync-interval-ms', '-5'], '--fsync-interval-ms: "-5" is not a number of milliseconds from 1 to 2147483647'],
])('%j is refused in kv words', (argv, message) => {
  expect(refusal(argv)).toBe(message);
  expect(refusal([argv.join('=')])).toBe(message);
});

test('a flag that takes no value is not joined with a negative number after it', () => {
  expect(refusal(['--insecure', '-1'])).not.toContain('--insecure=');
});

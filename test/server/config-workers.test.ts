/**
 * --workers: auto counts the machine's cores but never past the 64 allowed
 * (a machine of more cores still starts); a bad value names what is allowed.
 */
import { ConfigError, loadConfig, type Config } from '../../src/config';

function workers(argv: string[], cores: number, env: NodeJS.ProcessEnv = {}): number {
  return (loadConfig(argv, env, cores) as Config).workers;
}

test('auto is one per core', () => {
  expect(workers(['--workers', 'auto'], 2)).toBe(2);
  expect(workers([], 8, { KV_WORKERS: 'auto' })).toBe(8);
});

test('auto on a machine of more than 64 cores is 64, not a refusal', () => {
  expect(workers(['--workers', 'auto'], 128)).toBe(64);
  expect(workers(['--workers', 'auto'], 64)).toBe(64);
});

test.each([['0'], ['-1'], ['two'], ['1.5']])('--workers %s is refused naming auto', (value) => {
  expect(() => loadConfig(['--workers', value], {}, 2)).toThrow(new ConfigError(`--workers: "${value}" is not a positive integer or auto`));
});

test('more than 64 given by number is still refused', () => {
  expect(() => loadConfig(['--workers', '65'], {}, 128)).toThrow(/65 workers is more than the 64 allowed/);
});

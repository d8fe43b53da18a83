/**
 * KV_* variables nothing of kv reads (a misspelling) are warned about in one
 * line, never refused; those of kvctl, the example clients and the test
 * suite are not.
 */
import { unknownEnvironmentWarning } from '../../src/config';
import { startServer } from '../support/server-process';

describe('unknown KV_* variables', () => {
  test('a misspelt one is named with the variable it is closest to', () => {
    expect(unknownEnvironmentWarning({ KV_FSYNK: 'never' })).toBe(
      'the environment variable KV_FSYNK (did you mean KV_FSYNC?) is not a kv-server setting and is ignored',
    );
    expect(unknownEnvironmentWarning({ KV_SHUTDOWN_GRACE: '0' })).toContain('KV_SHUTDOWN_GRACE (did you mean KV_SHUTDOWN_GRACE_MS?)');
  });

  test('several are named in one line; one close to nothing is named alone', () => {
    expect(unknownEnvironmentWarning({ KV_DATADIR: '/x', KV_FROBNICATE: '1', PATH: '/bin' })).toBe(
      'the environment variables KV_DATADIR (did you mean KV_DATA_DIR?), KV_FROBNICATE are not kv-server settings and are ignored',
    );
  });

  test("the server's own, kvctl's, the example clients' and the test suite's variables are not warned about", () => {
    const env = {
      KV_FSYNC: 'never',
      KV_MAX_CONNECTIONS: '10',
      KV_ENDPOINTS: '127.0.0.1:50051',
      KV_TOKEN: 't',
      KV_TLS_CA: 'ca.crt',
      KV_CLIENT_TLS_CERT: 'c.crt',
      KV_CLIENT_TLS_KEY: 'c.key',
      KV_OUTPUT: 'json',
      KV_TIMEOUT_MS: '1000',
      KV_ADDRESS: '127.0.0.1:50051',
      KV_REQUIRE_ALL_CLIENTS: '1',
      KV_REQUIRE_DISK_FAULTS: '1',
      KV_CHROMIUM: '/usr/bin/chromium',
      KV_CONSOLE_SCREENSHOTS: 'docs',
      KV_LOADED_MODULES_FILE: '/tmp/m',
      HOME: '/root',
    };
    expect(unknownEnvironmentWarning(env)).toBeUndefined();
  });

  test('kv-server warns once at start and serves with the setting it did not recognise left at its default', async () => {
    const server = await startServer({ env: { KV_FSYNK: 'never', KV_ENDPOINTS: '127.0.0.1:1' } });
    try {
      expect(server.output()).toContain('fsync always');
      const warnings = server
        .output()
        .split('\n')
        .filter((line) => line.includes('not a kv-server setting'));
      expect(warnings).toHaveLength(1);
      expect(JSON.parse(warnings[0])).toMatchObject({
        level: 40,
        msg: 'the environment variable KV_FSYNK (did you mean KV_FSYNC?) is not a kv-server setting and is ignored',
      });
    } finally {
      expect(await server.stop()).toBe(0);
    }
  });
});

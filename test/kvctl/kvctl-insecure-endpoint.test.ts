/**
 * kvctl decides what is loopback with the SDK's rule (isLoopbackAddress),
 * and --insecure reaches the SDK as `insecure: true`: a server listening in
 * plaintext on this machine's outside address (kv-server --insecure) is
 * refused without --insecure, exit 2, and served with it. (The SDK refuses
 * plaintext off loopback itself now, so kvctl --insecure would otherwise
 * fail on it.)
 */
import { networkInterfaces } from 'node:os';
import { runKvctl } from '../support/kvctl-process';
import { startServer } from '../support/server-process';

/** This machine's first IPv4 address that is not loopback, if it has one. */
const outsideAddress = Object.values(networkInterfaces())
  .flat()
  .find((i) => i !== undefined && i.family === 'IPv4' && !i.internal)?.address;

(outsideAddress === undefined ? test.skip : test)(
  'plaintext to a server on a non-loopback address: refused without --insecure, served with it',
  async () => {
    const server = await startServer({ listen: `${outsideAddress}:0`, env: { KV_INSECURE: '1' } });
    try {
      const env = { KV_ENDPOINTS: server.address };
      const refused = await runKvctl(['set', 'k', '1'], { env });
      expect({ code: refused.code, stdout: refused.stdout }).toEqual({ code: 2, stdout: '' });
      expect(refused.stderr).toBe(
        `kvctl: ${server.address} is not a loopback address: give --tls-ca (TLS), or --insecure to send in plaintext\n`,
      );

      const set = await runKvctl(['set', 'k', '1', '--insecure', '-o', 'value'], { env });
      expect({ code: set.code, stderr: set.stderr }).toEqual({ code: 0, stderr: '' });
      const got = await runKvctl(['get', 'k', '--insecure', '-o', 'value'], { env });
      expect({ code: got.code, stdout: got.stdout, stderr: got.stderr }).toEqual({ code: 0, stdout: '1\n', stderr: '' });
    } finally {
      await server.stop();
    }
  },
);

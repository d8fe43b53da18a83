/**
 * One rule for what counts as loopback (where plaintext may go): the SDK
 * and kvctl (isLoopbackAddress), the server's --listen check, its HTTP
 * port's Host check and its etcd endpoint check all use @kv/client/wire's
 * isLoopbackHost. The server had two copies that disagreed (its etcd check
 * took [::ffff:127.0.0.1] for remote).
 */
import { isLoopbackAddress, isLoopbackHost } from '@kv/client/wire';
import { type Config, loadConfig } from '../../src/config';
import { isLoopbackHost as serverRule, listenPolicyProblem } from '../../src/security/listen-policy';

test('the server uses the shared rule', () => {
  expect(serverRule).toBe(isLoopbackHost);
});

test.each([
  ['127.0.0.1', true],
  ['127.8.9.10', true],
  ['localhost', true],
  ['LOCALHOST', true],
  ['::1', true],
  ['[::1]', true],
  ['::ffff:127.0.0.1', true],
  ['[::ffff:127.0.0.1]', true],
  ['[::ffff:7f00:1]', true],
  ['::ffff:7f01:203', true],
  ['::ffff:a00:1', false],
  ['128.0.0.1', false],
  ['127.999.0.1', false],
  ['0.0.0.0', false],
  ['::', false],
  ['[::]', false],
  ['localhost.', false],
  ['example.com', false],
  ['', false],
])('isLoopbackHost(%j) is %s', (host, loopback) => {
  expect(isLoopbackHost(host)).toBe(loopback);
});

test('addresses: host:port, [v6]:port, schemes and lists; anything unreadable is not loopback', () => {
  expect(
    ['127.0.0.1:50051', '[::1]:50051', 'localhost:1', 'ipv4:127.0.0.1:1,127.0.0.2:2', 'unix:/tmp/kv.sock'].map(isLoopbackAddress),
  ).toEqual([true, true, true, true, true]);
  expect(['10.0.0.1:50051', 'ipv4:127.0.0.1:1,10.0.0.1:2', 'http://127.0.0.1:1', 'kv.internal:50051'].map(isLoopbackAddress)).toEqual([
    false,
    false,
    false,
    false,
  ]);
});

test('an http:// etcd endpoint on an IPv4-mapped loopback address is loopback to the server too', () => {
  const config = loadConfig(['--engine', 'etcd', '--etcd-endpoints', 'http://[::ffff:127.0.0.1]:2379'], {}) as Config;
  expect(config.etcdEndpoints).toEqual(['http://[::ffff:127.0.0.1]:2379']);
});

test('a shortened loopback address (127.1) is refused for plaintext, and the message says which forms count', () => {
  expect(isLoopbackHost('127.1')).toBe(false);
  expect(listenPolicyProblem({ listen: '127.1:50051', tls: false, callersIdentified: false, insecure: false })).toBe(
    'refusing to serve plaintext on 127.1:50051, which is not a loopback address (as kv reads one: 127.x.x.x, [::1] or localhost, written in full): ' +
      'give --tls-cert and --tls-key (docs/security.md), or pass --insecure to serve plaintext knowingly',
  );
});

/**
 * A frontend whose etcd does not answer at start exits 1 with one line for
 * the operator: what etcd said and what to check, not a call's "nothing was
 * applied: try again". No etcd is needed: nothing listens at the endpoint.
 */
import { freePort } from '../support/etcd-cluster';
import { runServerToExit } from '../support/server-process';

test('etcd unreachable at start: exit 1, one line naming the endpoint, what failed and what to check', async () => {
  const endpoint = `http://127.0.0.1:${await freePort()}`;
  const { code, stdout, stderr } = await runServerToExit(
    ['--listen', '127.0.0.1:0', '--engine', 'etcd', '--etcd-endpoints', endpoint, '--etcd-timeout-ms', '1000'],
    {},
  );
  expect({ code, stdout }).toEqual({ code: 1, stdout: '' });
  expect(stderr).toMatch(
    new RegExp(
      `^kv-server: cannot open the store in etcd at ${endpoint}: etcd did not answer kv's first read \\([^\\n]*ECONNREFUSED[^\\n]*\\): ` +
        'check that --etcd-endpoints names members of the cluster, and that a majority of them is up \\(without a majority etcd has no leader, and answers nothing\\)\\n$',
    ),
  );
  expect(stderr).not.toMatch(/try again|nothing was applied/);
});

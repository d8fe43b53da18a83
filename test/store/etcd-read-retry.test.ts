/**
 * readWithRetry (the etcd engine's reads and keep-alives, retried within
 * --etcd-timeout-ms) reports what a member said over a try that never
 * left this process: once a try reached a member, "nothing was sent"
 * (NOT_SENT) would be untrue. Which try came last depended on which member
 * etcd3 picked, so a quorum-loss test met either.
 */
import { GRPCDeadlineExceededError, GRPCUnavailableError } from 'etcd3';
import { readWithRetry } from '../../src/store/etcd/etcd-connection';
import { fromEtcdError } from '../../src/store/etcd/etcd-errors';

const reached = (): Error => new GRPCDeadlineExceededError('4 DEADLINE_EXCEEDED: Deadline exceeded');
const neverLeft = (): Error => new GRPCUnavailableError('14 UNAVAILABLE: No connection established');

async function failureOf(tries: (() => Error)[], budgetMs: number): Promise<unknown> {
  let n = 0;
  return readWithRetry(() => Promise.reject(tries[Math.min(n++, tries.length - 1)]()), budgetMs, 'keep-alive').catch(
    (error: unknown) => error,
  );
}

test('a try that reached a member, then tries that never left: UNAVAILABLE, what the member said', async () => {
  expect(await failureOf([reached, neverLeft], 300)).toMatchObject({
    code: 'UNAVAILABLE',
    message: expect.stringContaining('etcd did not answer the keep-alive'),
  });
});

test('no try ever left: NOT_SENT', async () => {
  expect(await failureOf([neverLeft], 300)).toMatchObject({ code: 'NOT_SENT' });
});

test('a deadline that passed while grpc-js still waited for a connection (a frozen member) never left: NOT_SENT, for a write too', async () => {
  // grpc-js's text when the call never got a stream.
  const waited = (): Error =>
    new GRPCDeadlineExceededError('4 DEADLINE_EXCEEDED: Deadline exceeded after 2.001s,name resolution: 0.000s,Waiting for LB pick');
  expect(await failureOf([waited], 300)).toMatchObject({ code: 'NOT_SENT' });
  expect(fromEtcdError(waited(), 'write')).toMatchObject({ code: 'NOT_SENT', message: expect.stringContaining('nothing was applied') });
  // Once it had a stream, the write may have reached etcd.
  const sent = new GRPCDeadlineExceededError(
    '4 DEADLINE_EXCEEDED: Deadline exceeded after 2.001s,LB pick: 0.000s,remote_addr=127.0.0.1:2379',
  );
  expect(fromEtcdError(sent, 'write')).toMatchObject({ code: 'UNAVAILABLE', message: expect.stringContaining('may or may not') });
});

/**
 * readWithRetry (the etcd engine's reads and keep-alives, retried within
 * --etcd-timeout-ms) reports what a member said over a try that never
 * left this process: once a try reached a member, "nothing was sent"
 * (NOT_SENT) would be untrue. Which try came last depended on which member
 * etcd3 picked, so a quorum-loss test met either.
 */
import { GRPCDeadlineExceededError, GRPCUnavailableError } from 'etcd3';
import { readWithRetry } from '../../src/store/etcd/etcd-connection';

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

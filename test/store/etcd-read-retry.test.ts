/**
 * readWithRetry (the etcd engine's reads and keep-alives, retried within
 * --etcd-timeout-ms) reports what a member said over a try that never
 * left this process: once a try reached a member, "nothing was sent"
 * (NOT_SENT) would be untrue. Which try came last depended on which member
 * etcd3 picked, so a quorum-loss test met either.
 */
import net from 'node:net';
import { GRPCDeadlineExceededError, GRPCInvalidArgumentError, GRPCUnavailableError } from 'etcd3';
import { BrokenCircuitError, CircuitState, circuitBreaker, ConsecutiveBreaker, handleAll, isBrokenCircuitError } from 'cockatiel';
import { connectEtcd, readWithRetry, withoutWaitingOnTrial } from '../../src/store/etcd/etcd-connection';
import { pollUntil } from '../support/temp-dirs';
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
  // A "member" that accepts connections and never speaks HTTP/2, as a frozen one does: a real etcd3 call to it.
  const sockets: net.Socket[] = [];
  const frozen = net.createServer((socket) => void sockets.push(socket));
  await new Promise<void>((resolve) => frozen.listen(0, '127.0.0.1', resolve));
  const { port } = frozen.address() as net.AddressInfo;
  const client = connectEtcd({ endpoints: [`http://127.0.0.1:${port}`], callTimeoutMs: 300 });
  try {
    const error = await client
      .put('k')
      .value('v')
      .exec()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GRPCDeadlineExceededError);
    expect((error as Error).message).toContain('Waiting for LB pick');
    expect(fromEtcdError(error, 'write')).toMatchObject({ code: 'NOT_SENT', message: expect.stringContaining('nothing was applied') });
    expect(await failureOf([() => error as Error], 300)).toMatchObject({ code: 'NOT_SENT' });
  } finally {
    client.close();
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => frozen.close(resolve));
  }
  // A retry of an attempt that may have been sent is not: grpc-js's text then names the previous attempts.
  const retried = new GRPCDeadlineExceededError(
    '4 DEADLINE_EXCEEDED: Deadline exceeded after 2.001s,previous attempts: 1,time to current attempt start: 1.5s,Waiting for LB pick',
  );
  expect(fromEtcdError(retried, 'write')).toMatchObject({ code: 'UNAVAILABLE', message: expect.stringContaining('may or may not') });
  // Once it had a stream, the write may have reached etcd.
  const sent = new GRPCDeadlineExceededError(
    '4 DEADLINE_EXCEEDED: Deadline exceeded after 2.001s,LB pick: 0.000s,remote_addr=127.0.0.1:2379',
  );
  expect(fromEtcdError(sent, 'write')).toMatchObject({ code: 'UNAVAILABLE', message: expect.stringContaining('may or may not') });
});

test('a write queued behind a call that failed on the same frozen member ends "Channel closed before call started": NOT_SENT, not of unknown outcome', async () => {
  // etcd3 closes a member's channel when a call to it fails in a way it recovers from (resetAllServices); grpc-js then ends
  // the calls still waiting for a connection on that channel with this text: they never had a stream.
  const sockets: net.Socket[] = [];
  const frozen = net.createServer((socket) => void sockets.push(socket));
  await new Promise<void>((resolve) => frozen.listen(0, '127.0.0.1', resolve));
  const { port } = frozen.address() as net.AddressInfo;
  const client = connectEtcd({ endpoints: [`http://127.0.0.1:${port}`], callTimeoutMs: 20_000 });
  try {
    const write = client
      .put('k')
      .value('v')
      .exec()
      .catch((e: unknown) => e);
    const read = client.kv.range({ key: Buffer.from('k') }, { deadline: Date.now() + 300 }).catch((e: unknown) => e);
    expect(await read).toBeInstanceOf(GRPCDeadlineExceededError);
    const error = await write;
    expect(error).toBeInstanceOf(GRPCUnavailableError);
    expect((error as Error).message).toContain('Channel closed before call started');
    expect(fromEtcdError(error, 'write')).toMatchObject({
      code: 'NOT_SENT',
      message: expect.stringContaining('nothing was sent to etcd, nothing was applied'),
    });
    expect((fromEtcdError(error, 'write') as Error).message).not.toContain('may or may not');
  } finally {
    client.close();
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => frozen.close(resolve));
  }
});

test('etcd refusing a Txn over its --max-txn-ops is about the transaction, whichever etcd call met it, never "refused the read"', () => {
  const refused = new GRPCInvalidArgumentError('3 INVALID_ARGUMENT: etcdserver: too many operations in txn request');
  for (const kind of ['read', 'write'] as const) {
    const error = fromEtcdError(refused, kind) as Error;
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(error.message).toMatch(
      /^the transaction has more operations than etcd's --max-txn-ops \(128 by default\) allows; nothing was applied: /,
    );
    expect(error.message).not.toContain(`refused the ${kind}`);
  }
});

test('while a member is tried again (its circuit half open), other calls skip it at once, and a call made from inside the trial does not wait on the trial', async () => {
  const breaker = withoutWaitingOnTrial(circuitBreaker(handleAll, { halfOpenAfter: 0, breaker: new ConsecutiveBreaker(1) }));
  await breaker.execute(() => Promise.reject(new Error('member down'))).catch(() => undefined);
  // Open, and (halfOpenAfter 0) the next call is its trial.
  expect(breaker.state).toBe(CircuitState.Open);
  let release = (): void => undefined;
  let nested: unknown;
  // The trial, as etcd3 runs one that met "invalid auth token": it calls again, through the same member's breaker.
  const trial = breaker.execute(async () => {
    // The trial's own call to the member fails first (I/O), then it calls again.
    await new Promise((resolve) => setImmediate(resolve));
    nested = await breaker.execute(() => Promise.resolve('nested')).catch((error: unknown) => error);
    await new Promise<void>((resolve) => (release = resolve));
    return 'trial';
  });
  expect(breaker.state).toBe(CircuitState.HalfOpen);
  await pollUntil('the nested call to be answered', () => (nested === undefined ? undefined : true));
  expect(isBrokenCircuitError(nested)).toBe(true);
  // Said as it is: nothing was sent, because the member is being tried again.
  expect(fromEtcdError(nested, 'write')).toMatchObject({
    code: 'NOT_SENT',
    message: expect.stringContaining('its member failed recently and is being tried again'),
  });
  await expect(breaker.execute(() => Promise.resolve('other'))).rejects.toBeInstanceOf(BrokenCircuitError);
  release();
  await expect(trial).resolves.toBe('trial');
  await expect(breaker.execute(() => Promise.resolve('after'))).resolves.toBe('after');
});

test('a call skipped by an open circuit carries the failure that member last met, and says it; a failure the breaker does not count is not it', async () => {
  const breaker = withoutWaitingOnTrial(circuitBreaker(handleAll, { halfOpenAfter: 60_000, breaker: new ConsecutiveBreaker(2) }), (error) =>
    error.message.startsWith('member'),
  );
  await breaker.execute(() => Promise.reject(new Error('member down: alert bad certificate'))).catch(() => undefined);
  await breaker.execute(() => Promise.reject(new Error('not counted'))).catch(() => undefined);
  expect(breaker.state).toBe(CircuitState.Open);
  const skipped = await breaker.execute(() => Promise.resolve('never run')).catch((error: unknown) => error);
  expect(isBrokenCircuitError(skipped)).toBe(true);
  expect(fromEtcdError(skipped, 'read')).toMatchObject({
    code: 'NOT_SENT',
    message: expect.stringContaining("(each failed recently; the last failure: etcd refused this server's TLS client certificate"),
  });
});

test("a circuit-open error from a call made inside the call (another member's) keeps that member's failure; a success forgets a member's failure", async () => {
  const member = (): ReturnType<typeof withoutWaitingOnTrial> =>
    withoutWaitingOnTrial(circuitBreaker(handleAll, { halfOpenAfter: 60_000, breaker: new ConsecutiveBreaker(2) }), () => true);
  const outer = member();
  const inner = member();
  await outer.execute(() => Promise.reject(new Error('outer failure: connect ECONNREFUSED'))).catch(() => undefined);
  for (let i = 0; i < 2; i++)
    await inner.execute(() => Promise.reject(new Error('inner failure: alert bad certificate'))).catch(() => undefined);
  expect([outer.state, inner.state]).toEqual([CircuitState.Closed, CircuitState.Open]);
  // As etcd3 calls again (through the next member's breaker) from inside a call that met "invalid auth token".
  const nested = await outer.execute(() => inner.execute(() => Promise.resolve('never run'))).catch((error: unknown) => error);
  expect(fromEtcdError(nested, 'read')).toMatchObject({
    message: expect.stringContaining("the last failure: etcd refused this server's TLS client certificate"),
  });
  // A success, then the circuit opens on failures that are not counted: no failure of before is named.
  const forgetting = withoutWaitingOnTrial(
    circuitBreaker(handleAll, { halfOpenAfter: 60_000, breaker: new ConsecutiveBreaker(2) }),
    (error) => error.message.startsWith('counted'),
  );
  await forgetting.execute(() => Promise.reject(new Error('counted: connect ECONNREFUSED'))).catch(() => undefined);
  await forgetting.execute(() => Promise.resolve('ok'));
  for (let i = 0; i < 2; i++) await forgetting.execute(() => Promise.reject(new Error('not counted'))).catch(() => undefined);
  const skipped = await forgetting.execute(() => Promise.resolve('never run')).catch((error: unknown) => error);
  expect(fromEtcdError(skipped, 'read')).toMatchObject({ message: expect.stringContaining('(each failed recently)') });
});

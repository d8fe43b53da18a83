/** The etcd engine's per-key queue: bounded in time (a deadline) and in length (maxPerKey). No etcd needed. */
import { KeyQueue } from '../../src/store/etcd/key-queue';

const queue = (maxPerKey: number): KeyQueue =>
  new KeyQueue({
    maxPerKey,
    tooMany: (key, max) => new Error(`full ${key} ${max}`),
    tooLate: (key) => new Error(`late ${key}`),
  });

/** A work that runs until `finish` is called. */
function held(): { work: () => Promise<string>; finish: () => void; started: () => boolean } {
  let finish = (): void => undefined;
  let started = false;
  const done = new Promise<string>((resolve) => {
    finish = () => resolve('held');
  });
  return {
    work: () => {
      started = true;
      return done;
    },
    finish: () => finish(),
    started: () => started,
  };
}

describe('KeyQueue', () => {
  test('work still waiting at its deadline fails without running; the work after it still waits for the one running', async () => {
    const q = queue(1000);
    const first = held();
    const running = q.run(['k'], first.work);
    let lateRan = false;
    const late = q.run(
      ['k'],
      () => {
        lateRan = true;
        return Promise.resolve('late');
      },
      Date.now() + 50,
    );
    await expect(late).rejects.toThrow('late k');
    expect(lateRan).toBe(false);
    // The key is still held by the first work: the next one waits for it, not for the one that left.
    const next = held();
    const after = q.run(['k'], next.work);
    await new Promise((resolve) => setImmediate(resolve));
    expect(next.started()).toBe(false);
    first.finish();
    await expect(running).resolves.toBe('held');
    const deadline = Date.now() + 5000;
    while (!next.started()) {
      if (Date.now() > deadline) throw new Error('the next work never started');
      await new Promise((resolve) => setImmediate(resolve));
    }
    next.finish();
    await expect(after).resolves.toBe('held');
    expect(q.size).toBe(0);
  });

  test('a key with maxPerKey works queued or running refuses one more at once; other keys are not affected', async () => {
    const q = queue(3);
    const first = held();
    const queued = [q.run(['k'], first.work), q.run(['k'], () => Promise.resolve(2)), q.run(['k', 'j'], () => Promise.resolve(3))];
    await expect(q.run(['j', 'k'], () => Promise.resolve(4))).rejects.toThrow('full k 3');
    await expect(q.run(['other'], () => Promise.resolve(5))).resolves.toBe(5);
    first.finish();
    await expect(Promise.all(queued)).resolves.toEqual(['held', 2, 3]);
    // Room again once they are done.
    await expect(q.run(['k'], () => Promise.resolve(6))).resolves.toBe(6);
    expect(q.size).toBe(0);
  });
});

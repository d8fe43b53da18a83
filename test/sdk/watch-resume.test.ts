/**
 * A KvWatch left with `break` and iterated again: the next loop goes on from
 * the event after the last one given, never replaying one nor skipping one,
 * even when the break came in the middle of one server message or of one
 * transaction's events. Its revision is the last one every change of which
 * has been given: that of the last event given, unless the break came
 * between two events of one revision, so a new watch from revision + 1
 * never misses a change.
 */
import { Op, type KvWatch, type KvWatchEvent } from '@kv/client';
import { serverWithClient } from '../support/sdk-fixture';

const fixture = serverWithClient();

/** The next `count` events of `watch` as "key@revision", then break out of the loop. */
async function take(watch: KvWatch, count: number): Promise<string[]> {
  const taken: string[] = [];
  for await (const event of watch) {
    taken.push(label(event));
    if (taken.length === count) break;
  }
  return taken;
}

const label = (event: KvWatchEvent): string => `${event.key}@${event.revision}`;

test('history of five writes (one message): break after three, revision is the third, the next loop starts at the fourth', async () => {
  const revisions: number[] = [];
  for (let i = 1; i <= 5; i++) revisions.push(await fixture.kv.set(`h/${i}`, i));
  const watch = fixture.kv.watch({ prefix: 'h/', startRevision: revisions[0] });

  expect(await take(watch, 3)).toEqual(['h/1', 'h/2', 'h/3'].map((key, i) => `${key}@${revisions[i]}`));
  expect(watch.revision).toBe(revisions[2]);
  expect(await take(watch, 2)).toEqual([`h/4@${revisions[3]}`, `h/5@${revisions[4]}`]);
  expect(watch.revision).toBe(revisions[4]);

  // After the last event of the history, the next loop waits for the next change.
  const next = take(watch, 1);
  const revision = await fixture.kv.set('h/6', 6);
  expect(await next).toEqual([`h/6@${revision}`]);
  expect(watch.revision).toBe(revision);
});

test("a break between two events of one transaction: the next loop gives the transaction's other event, once", async () => {
  const { revision } = await fixture.kv.txn().then(Op.set('t/a', 1), Op.set('t/b', 2), Op.set('t/c', 3)).commit();
  const after = await fixture.kv.set('t/d', 4);
  const watch = fixture.kv.watch({ prefix: 't/', startRevision: revision });

  expect(await take(watch, 1)).toEqual([`t/a@${revision}`]);
  // Not all of the transaction's revision has been given: it does not count yet.
  expect(watch.revision).toBe(revision - 1);
  expect(await take(watch, 2)).toEqual([`t/b@${revision}`, `t/c@${revision}`]);
  expect(watch.revision).toBe(revision);
  expect(await take(watch, 1)).toEqual([`t/d@${after}`]);
  expect(watch.revision).toBe(after);
});

test('a break between two events of one transaction: a new watch from watch.revision + 1 misses none of its events', async () => {
  const { revision } = await fixture.kv.txn().then(Op.set('b/1', 1), Op.set('b/2', 2), Op.set('b/3', 3)).commit();
  const watch = fixture.kv.watch({ prefix: 'b/', startRevision: revision });
  expect(await take(watch, 1)).toEqual([`b/1@${revision}`]);

  // What a program that saved watch.revision does later: the whole revision again, b/1 included (given once already).
  const again = fixture.kv.watch({ prefix: 'b/', startRevision: watch.revision + 1 });
  // Closed after 5 s if the events are not all there: what it gave is compared then.
  const timer = setTimeout(() => again.close(), 5000);
  expect(await take(again, 3)).toEqual(['b/1', 'b/2', 'b/3'].map((key) => `${key}@${revision}`));
  clearTimeout(timer);
  expect(again.revision).toBe(revision);
});

test('a watch from now, left after its first live event, goes on after it', async () => {
  const watch = fixture.kv.watch({ prefix: 'n/' });
  let taken = false;
  const first = take(watch, 1).finally(() => (taken = true));
  // A write before the stream opens is before "now": write until the watch has given one.
  const written: number[] = [];
  while (!taken) {
    written.push(await fixture.kv.set('n/k', written.length));
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const [seen] = await first;
  const seenRevision = Number(seen.split('@')[1]);
  expect(watch.revision).toBe(seenRevision);
  const later = written.filter((r) => r > seenRevision);
  const next = take(watch, later.length + 1);
  const last = await fixture.kv.set('n/k', 'last');
  expect(await next).toEqual([...later, last].map((r) => `n/k@${r}`));
});

test('a second loop while one is reading is refused (INVALID_ARGUMENT); the first goes on, and a loop after it ends is served', async () => {
  const first = await fixture.kv.set('two/1', 1);
  const watch = fixture.kv.watch({ prefix: 'two/', startRevision: first });
  const iterator = watch[Symbol.asyncIterator]();
  expect(label((await iterator.next()).value as KvWatchEvent)).toBe(`two/1@${first}`);

  await expect(take(watch, 1)).rejects.toMatchObject({
    reason: 'INVALID_ARGUMENT',
    message: expect.stringContaining('being read by another loop') as unknown,
  });
  // The refusal took nothing from the first loop.
  const second = await fixture.kv.set('two/2', 2);
  expect(label((await iterator.next()).value as KvWatchEvent)).toBe(`two/2@${second}`);
  await iterator.return(undefined);

  const third = await fixture.kv.set('two/3', 3);
  expect(await take(watch, 1)).toEqual([`two/3@${third}`]);
});

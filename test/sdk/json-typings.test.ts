/**
 * Every SDK call that takes a JSON value types it as set() does (JsonCompatible):
 * an interface, which has no index signature and so is not a JsonValue,
 * compiles as a value, a patch or a compared value; a function or a Date
 * does not. This file is the check: ts-jest (and `tsc --noEmit`) refuse it
 * if one of the calls below does not compile, or if one marked
 * @ts-expect-error does. It then runs them against a real server.
 */
import { Compare, Op } from '@kv/client';
import { serverWithClient } from '../support/sdk-fixture';

interface User {
  name: string;
  langs: string[];
  address?: { city: string };
}

interface UserPatch {
  name?: string;
  address?: { city: string } | null;
}

const fixture = serverWithClient();

test('an interface type is accepted by set, update, Op.set, Op.update and Compare.value alike', async () => {
  const ada: User = { name: 'Ada', langs: ['en'], address: { city: 'London' } };
  const moved: UserPatch = { address: { city: 'Paris' } };

  const revision = await fixture.kv.set('typed/ada', ada);
  const updated = await fixture.kv.update<User, UserPatch>('typed/ada', moved);
  expect(updated.value.address?.city).toBe('Paris');
  expect((await fixture.kv.update('typed/ada', moved)).modRevision).toBeGreaterThan(revision);

  const inParis: User = { ...ada, address: { city: 'Paris' } };
  const renamed: UserPatch = { name: 'Ada L.' };
  const { succeeded } = await fixture.kv
    .txn()
    .if(Compare.value('typed/ada', '==', inParis))
    .then(Op.set('typed/grace', ada), Op.update('typed/ada', renamed))
    .commit();
  expect(succeeded).toBe(true);
  expect((await fixture.kv.get<User>('typed/ada'))?.value).toEqual({ name: 'Ada L.', langs: ['en'], address: { city: 'Paris' } });
  expect((await fixture.kv.get<User>('typed/grace'))?.value).toEqual(ada);
});

test('what is not JSON does not compile, wherever a JSON value goes (and is refused at run time if forced)', async () => {
  const withFunction = { name: 'Ada', greet: (): string => 'hi' };
  const withDate = { name: 'Ada', born: new Date(0) };
  const refusals: (() => unknown)[] = [
    // @ts-expect-error a function is not JSON
    () => fixture.kv.set('typed/x', withFunction),
    // @ts-expect-error a Date is not JSON
    () => fixture.kv.update('typed/x', withDate),
    // @ts-expect-error a function is not JSON
    () => Op.set('typed/x', withFunction),
    // @ts-expect-error a Date is not JSON
    () => Op.update('typed/x', withDate),
    // @ts-expect-error a bigint is not JSON
    () => Compare.value('typed/x', '==', 10n),
  ];
  for (const refusal of refusals) {
    await expect(Promise.resolve().then(refusal)).rejects.toMatchObject({ reason: 'INVALID_VALUE' });
  }
  expect(await fixture.kv.get('typed/x')).toBeUndefined();
});

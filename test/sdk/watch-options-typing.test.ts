/**
 * WatchOptions takes exactly one of key and prefix, and the compiler says
 * so: `kv.watch({})` and `kv.watch({ key, prefix })` do not compile. This
 * file is the check: ts-jest (and `tsc --noEmit`) refuse it if a call marked
 * @ts-expect-error compiles, or if one of the others does not. Plain
 * JavaScript (or `any`) that passes either is still refused when the watch
 * is made, with one line.
 */
import { status, type WatchOptions } from '@kv/client';
import { refusalOf, serverWithClient } from '../support/sdk-fixture';

const fixture = serverWithClient();

test('{} and { key, prefix } do not compile, and are refused at run time: INVALID_ARGUMENT, one line', async () => {
  const refusals = [
    // @ts-expect-error neither key nor prefix
    await refusalOf('watch({})', () => fixture.kv.watch({})),
    // @ts-expect-error both key and prefix
    await refusalOf('watch({ key, prefix })', () => fixture.kv.watch({ key: 'a', prefix: 'b/' })),
    // @ts-expect-error options alone, no key nor prefix
    await refusalOf('watch({ startRevision })', () => fixture.kv.watch({ startRevision: 1 })),
  ];
  for (const refusal of refusals) {
    expect({ code: refusal.code, reason: refusal.reason, message: refusal.message }).toEqual({
      code: status.INVALID_ARGUMENT,
      reason: 'INVALID_ARGUMENT',
      message: 'watch needs exactly one of key and prefix',
    });
  }
});

test('a key or a prefix compiles, also when chosen at run time', async () => {
  const revision = await fixture.kv.set('typed/k', 1);
  const which = (key: string | undefined, prefix: string): WatchOptions =>
    key !== undefined ? { key, startRevision: revision } : { prefix, startRevision: revision };
  for (const options of [
    { key: 'typed/k', startRevision: revision },
    { prefix: 'typed/', startRevision: revision },
    which('typed/k', ''),
    which(undefined, 'typed/'),
  ]) {
    for await (const event of fixture.kv.watch(options)) {
      expect(event).toMatchObject({ key: 'typed/k', revision });
      break;
    }
  }
});

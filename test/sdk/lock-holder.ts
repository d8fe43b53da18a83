/**
 * A process that takes a lock with the SDK README's withLock and holds it
 * until it is killed: `lock-holder.ts ADDRESS NAME TTL_MS`. Prints
 * "holding" once it has the lock.
 */
import { KvClient } from '@kv/client';
import { withLock } from '../../clients/typescript/examples/with-lock';

const [address, name, ttlMs] = process.argv.slice(2);
const kv = new KvClient(address);
void withLock(
  kv,
  name,
  () => {
    process.stdout.write('holding\n');
    return new Promise<never>(() => undefined);
  },
  Number(ttlMs),
);

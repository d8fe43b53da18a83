/**
 * What a lease id lets another role do (docs/security.md, "Leases"), on
 * both engines: a key's private lease (Set with ttl_ms) always holds its key,
 * so a caller who saw its id (Entry.lease, to a reader of the key) can
 * neither attach a key of its own to it, nor keep it alive, nor revoke it,
 * and once the key leaves it the id is gone for good. A shared lease with
 * no key attached is guarded only by the secrecy of its id: this pins that
 * documented limit, so the docs change with it.
 */
import type { Metadata } from '@grpc/grpc-js';
import type { Entry, KeyValueServiceClient } from '../../src/gen/kv/v1/kv';
import { bearer, keepAliveOutcomeOf, kvClient, outcomeOf, writeAuthFile } from '../support/auth-fixture';
import { describeWithEtcd, startEtcdCluster, type EtcdCluster } from '../support/etcd-cluster';
import { startServer, type RunningServer } from '../support/server-process';
import { makeTempDir } from '../support/temp-dirs';

const D = 'PERMISSION_DENIED';

interface Roles {
  /** writes app/ */
  owner: Metadata;
  /** writes other/, reads app/: sees the lease ids of app/'s keys */
  other: Metadata;
}

async function startWithRoles(args: string[]): Promise<{ server: RunningServer; kv: KeyValueServiceClient; roles: Roles }> {
  const auth = writeAuthFile(makeTempDir('kv-lease-ids-'), {
    roles: {
      owner: [{ prefix: 'app/', permission: 'write' }],
      other: [
        { prefix: 'other/', permission: 'write' },
        { prefix: 'app/', permission: 'read' },
      ],
    },
    tokens: { owner: 'owner', other: 'other' },
  });
  const server = await startServer({ args: ['--auth-file', auth.file, ...args] });
  return { server, kv: kvClient(server.address), roles: { owner: bearer(auth.tokens.owner), other: bearer(auth.tokens.other) } };
}

function entryOf(kv: KeyValueServiceClient, key: string, metadata: Metadata): Promise<Entry> {
  return new Promise((resolve, reject) =>
    kv.get({ key }, metadata, (error, response) => (error ? reject(error) : resolve(response.entry as Entry))),
  );
}

function grantLease(kv: KeyValueServiceClient, metadata: Metadata): Promise<number> {
  return new Promise((resolve, reject) =>
    kv.grantLease({ ttlMs: 60_000 }, metadata, (error, response) => (error ? reject(error) : resolve(response.id))),
  );
}

const set = (key: string, extra: { lease?: number; ttlMs?: number } = {}): object => ({ key, value: 'v', lease: 0, ttlMs: 0, ...extra });

function leaseIdCases(start: () => Promise<{ server: RunningServer; kv: KeyValueServiceClient; roles: Roles }>): void {
  let server: RunningServer;
  let kv: KeyValueServiceClient;
  let roles: Roles;
  beforeAll(async () => {
    ({ server, kv, roles } = await start());
  });
  afterAll(async () => {
    kv?.close();
    if (server !== undefined) expect(await server.stop()).toBe(0);
  });

  test("a key's private lease (ttl_ms) cannot be taken over, kept alive or revoked by another role that saw its id", async () => {
    const { owner, other } = roles;
    expect((await outcomeOf(kv, kv.set, set('app/session', { ttlMs: 60_000 }), owner)).code).toBe('OK');
    const lease = (await entryOf(kv, 'app/session', other)).lease;
    expect(lease).toBeGreaterThan(0);

    const attach = await outcomeOf(kv, kv.set, set('other/y', { lease }), other);
    expect(attach.code).toBe(D);
    const txn = { compare: [], success: [{ set: set('other/y', { lease }) }], failure: [] };
    expect((await outcomeOf(kv, kv.txn, txn, other)).code).toBe(D);
    expect((await outcomeOf(kv, kv.revokeLease, { id: lease }, other)).code).toBe(D);
    expect((await keepAliveOutcomeOf(kv, lease, other)).code).toBe(D);
    expect((await outcomeOf(kv, kv.get, { key: 'other/y' }, other)).code).toBe('NOT_FOUND');

    // Its owner still has it whole.
    expect((await keepAliveOutcomeOf(kv, lease, owner)).code).toBe('OK');
    expect((await entryOf(kv, 'app/session', owner)).lease).toBe(lease);

    // Once the key leaves it (set again without ttl_ms), the lease is gone: its id opens nothing.
    expect((await outcomeOf(kv, kv.set, set('app/session'), owner)).code).toBe('OK');
    expect((await outcomeOf(kv, kv.leaseInfo, { id: lease, keys: false }, other)).code).toBe('NOT_FOUND');
    expect((await outcomeOf(kv, kv.set, set('other/y', { lease }), other)).code).toBe('NOT_FOUND');
  });

  test('a deleted key takes its private lease with it, so the id cannot be reused', async () => {
    const { owner, other } = roles;
    expect((await outcomeOf(kv, kv.set, set('app/gone', { ttlMs: 60_000 }), owner)).code).toBe('OK');
    const lease = (await entryOf(kv, 'app/gone', other)).lease;
    expect((await outcomeOf(kv, kv.delete, { key: 'app/gone' }, owner)).code).toBe('OK');
    expect((await outcomeOf(kv, kv.set, set('other/z', { lease }), other)).code).toBe('NOT_FOUND');
    expect((await outcomeOf(kv, kv.revokeLease, { id: lease }, other)).code).toBe('NOT_FOUND');
  });

  test('documented limit: a shared lease with no key attached is guarded only by its id (another role that knows it may attach its key)', async () => {
    const { owner, other } = roles;
    const lease = await grantLease(kv, owner);
    expect((await outcomeOf(kv, kv.set, set('app/member', { lease }), owner)).code).toBe('OK');
    expect((await entryOf(kv, 'app/member', other)).lease).toBe(lease);
    // While a key of the owner's is on it, the other role is kept off.
    expect((await outcomeOf(kv, kv.set, set('other/w', { lease }), other)).code).toBe(D);
    // Its last key deleted, the lease is empty until its ttl: any writer with its id may attach to it.
    expect((await outcomeOf(kv, kv.delete, { key: 'app/member' }, owner)).code).toBe('OK');
    expect((await outcomeOf(kv, kv.set, set('other/w', { lease }), other)).code).toBe('OK');
    // ... after which its granting role can neither keep it alive nor revoke it.
    expect((await keepAliveOutcomeOf(kv, lease, owner)).code).toBe(D);
    expect((await outcomeOf(kv, kv.revokeLease, { id: lease }, owner)).code).toBe(D);
    expect((await outcomeOf(kv, kv.revokeLease, { id: lease }, other)).code).toBe('OK');
    // An empty lease just granted is as open: another role may revoke it, and learn its time to live.
    const fresh = await grantLease(kv, owner);
    expect((await outcomeOf(kv, kv.leaseInfo, { id: fresh, keys: false }, other)).code).toBe('OK');
    expect((await outcomeOf(kv, kv.revokeLease, { id: fresh }, other)).code).toBe('OK');
  });
}

describe('file engine', () => {
  leaseIdCases(() => startWithRoles([]));
});

describeWithEtcd()('etcd engine', () => {
  let cluster: EtcdCluster | undefined;
  leaseIdCases(async () => {
    cluster = await startEtcdCluster({ size: 1 });
    return startWithRoles(['--engine', 'etcd', '--etcd-endpoints', cluster.endpoints.join(',')]);
  });
  // After the server's own afterAll (hooks run in the order they are declared).
  afterAll(async () => {
    await cluster?.stop();
  });
});

/**
 * Every RPC against every kind of caller, on one TLS server with an auth
 * file: the status each gets, that a denied call changes nothing and does
 * not say whether a key exists, and that denials and admin actions are
 * audited without tokens or values.
 *
 * Adding an RPC is adding a row to ROWS. RevokeLease and LeaseInfo are
 * checked by the keys attached to the lease: their own test below.
 */
import { spawnSync } from 'node:child_process';
import { type ClientDuplexStream, credentials, type Metadata, type ServiceError, status } from '@grpc/grpc-js';
import {
  ErrorReason,
  GetRequest,
  type KeepAliveRequest,
  type KeepAliveResponse,
  type KeyValueServiceClient,
  WatchRequest,
} from '../../src/gen/kv/v1/kv';
import { issueServer, makeCa, read } from '../support/certificates';
import {
  bearer,
  keepAliveOutcomeOf,
  kvClient,
  outcomeOf,
  streamOutcomeOf,
  watchOutcomeOf,
  writeAuthFile,
  type Outcome,
} from '../support/auth-fixture';
import { startServer, type RunningServer } from '../support/server-process';
import { makeTempDir, pollUntil } from '../support/temp-dirs';

const CALLERS = ['no token', 'bad token', 'reader of app/', 'writer of other/', 'writer of app/', 'admin'] as const;
type Caller = (typeof CALLERS)[number];

interface Row {
  rpc: string;
  call(kv: KeyValueServiceClient, metadata: Metadata): Promise<Outcome>;
  /** The key or prefix a denial must name, and the permission it needs. */
  denial: string | RegExp;
  /** Expected status per caller, in CALLERS order (write includes read, admin includes write). */
  expect: [string, string, string, string, string, string];
}

const U = 'UNAUTHENTICATED';
const D = 'PERMISSION_DENIED';

// The value every cell starts from (seeded by the admin before each call); no log line may contain it.
const SEEDED_VALUE = 'value-that-must-never-be-logged';

const ROWS: Row[] = [
  {
    rpc: 'Get app/x',
    call: (kv, md) => outcomeOf(kv, kv.get, { key: 'app/x' }, md),
    denial: 'read on key "app/x"',
    expect: [U, U, 'OK', D, 'OK', 'OK'],
  },
  {
    rpc: 'Set app/x',
    call: (kv, md) => outcomeOf(kv, kv.set, { key: 'app/x', value: 'overwritten', lease: 0, ttlMs: 0 }, md),
    denial: 'write on key "app/x"',
    expect: [U, U, D, D, 'OK', 'OK'],
  },
  {
    rpc: 'Set app/x with expected_revision (a compare reads the key)',
    call: (kv, md) => outcomeOf(kv, kv.set, { key: 'app/x', value: 'cas', expectedRevision: 999, lease: 0, ttlMs: 0 }, md),
    denial: 'write on key "app/x"',
    expect: [U, U, D, D, 'ABORTED', 'ABORTED'],
  },
  {
    rpc: 'Delete app/x',
    call: (kv, md) => outcomeOf(kv, kv.delete, { key: 'app/x' }, md),
    denial: 'write on key "app/x"',
    expect: [U, U, D, D, 'OK', 'OK'],
  },
  {
    rpc: 'ListKeys app/',
    call: (kv, md) => outcomeOf(kv, kv.listKeys, { prefix: 'app/', pageSize: 0, pageToken: '' }, md),
    denial: 'read on prefix "app/"',
    expect: [U, U, 'OK', D, 'OK', 'OK'],
  },
  {
    rpc: 'ListKeys "" (wider than the reader\'s prefix: denied, not narrowed)',
    call: (kv, md) => outcomeOf(kv, kv.listKeys, { prefix: '', pageSize: 0, pageToken: '' }, md),
    denial: 'read on prefix ""',
    expect: [U, U, D, D, D, 'OK'],
  },
  {
    rpc: 'Watch key app/x (from revision 1: history answers at once)',
    call: (kv, md) => watchOutcomeOf(kv, { key: 'app/x', startRevision: 1 }, md),
    denial: 'read on key "app/x"',
    expect: [U, U, 'OK', D, 'OK', 'OK'],
  },
  {
    rpc: 'Watch prefix app/',
    call: (kv, md) => watchOutcomeOf(kv, { prefix: 'app/', startRevision: 1 }, md),
    denial: 'read on prefix "app/"',
    expect: [U, U, 'OK', D, 'OK', 'OK'],
  },
  {
    rpc: 'Watch prefix "" (wider than any but the admin\'s)',
    call: (kv, md) => watchOutcomeOf(kv, { prefix: '', startRevision: 1 }, md),
    denial: 'read on prefix ""',
    expect: [U, U, D, D, D, 'OK'],
  },
  {
    rpc: 'Txn: a compare on app/x and a Set of other/y (denied as a whole unless both are allowed)',
    call: (kv, md) =>
      outcomeOf(
        kv,
        kv.txn,
        {
          compare: [{ key: 'app/x', result: 1, modRevision: 0 }],
          success: [],
          failure: [{ set: { key: 'other/y', value: 'txn', lease: 0, ttlMs: 0 } }],
        },
        md,
      ),
    denial: /read on key "app\/x"|write on key "other\/y"/,
    expect: [U, U, D, D, D, 'OK'],
  },
  {
    rpc: 'Update app/x',
    call: (kv, md) => outcomeOf(kv, kv.update, { key: 'app/x', patch: { merged: true }, createIfMissing: false }, md),
    denial: 'write on key "app/x"',
    expect: [U, U, D, D, 'OK', 'OK'],
  },
  {
    rpc: 'List app/',
    call: (kv, md) => outcomeOf(kv, kv.list, { prefix: 'app/', pageSize: 0, pageToken: '' }, md),
    denial: 'read on prefix "app/"',
    expect: [U, U, 'OK', D, 'OK', 'OK'],
  },
  {
    rpc: 'Set app/x with a ttl',
    call: (kv, md) => outcomeOf(kv, kv.set, { key: 'app/x', value: 'expiring', lease: 0, ttlMs: 60_000 }, md),
    denial: 'write on key "app/x"',
    expect: [U, U, D, D, 'OK', 'OK'],
  },
  {
    rpc: 'GrantLease (needs write on some prefix: a lease is of use only to attach keys to)',
    call: (kv, md) => outcomeOf(kv, kv.grantLease, { ttlMs: 60_000 }, md),
    denial: 'write on some prefix is needed',
    expect: [U, U, D, 'OK', 'OK', 'OK'],
  },
  {
    rpc: 'Clear app/ (admin only)',
    call: (kv, md) => outcomeOf(kv, kv.clear, { prefix: 'app/' }, md),
    denial: 'admin on prefix "app/"',
    expect: [U, U, D, D, D, 'OK'],
  },
  {
    rpc: 'Backup (every key, so admin on prefix "")',
    call: (kv, md) => streamOutcomeOf(kv.backup({}, md, { deadline: new Date(Date.now() + 10_000) })),
    denial: 'admin on prefix ""',
    expect: [U, U, D, D, D, 'OK'],
  },
  {
    rpc: 'ListLeases (leases hold keys under any prefix, so admin on prefix "")',
    call: (kv, md) => outcomeOf(kv, kv.listLeases, { pageSize: 0, pageToken: '' }, md),
    denial: 'admin on prefix ""',
    expect: [U, U, D, D, D, 'OK'],
  },
  {
    rpc: 'Clear "" (everything)',
    call: (kv, md) => outcomeOf(kv, kv.clear, { prefix: '' }, md),
    denial: 'admin on prefix ""',
    expect: [U, U, D, D, D, 'OK'],
  },
];

let server: RunningServer;
let kv: KeyValueServiceClient;
let tokens: Record<string, string>;
let caFile: string;
const metadataOf = (caller: Caller): Metadata => {
  if (caller === 'no token') return bearer(undefined);
  if (caller === 'bad token') return bearer('kv_' + 'A'.repeat(43));
  return bearer(tokens[caller]);
};

beforeAll(async () => {
  const dir = makeTempDir('kv-matrix-');
  const ca = makeCa(dir, 'ca');
  caFile = ca.cert;
  const serverCert = issueServer(dir, ca);
  const auth = writeAuthFile(dir, {
    roles: {
      reader: [{ prefix: 'app/', permission: 'read' }],
      'other-writer': [{ prefix: 'other/', permission: 'write' }],
      'app-writer': [{ prefix: 'app/', permission: 'write' }],
      admin: [{ prefix: '', permission: 'admin' }],
    },
    tokens: { 'reader of app/': 'reader', 'writer of other/': 'other-writer', 'writer of app/': 'app-writer', admin: 'admin' },
  });
  tokens = auth.tokens;
  server = await startServer({
    args: ['--tls-cert', serverCert.cert, '--tls-key', serverCert.key, '--auth-file', auth.file, '--auth-failures-per-minute', '1000'],
    env: { KV_LOG_LEVEL: 'info' },
  });
  kv = kvClient(server.address, credentials.createSsl(read(ca.cert)));
});

afterAll(async () => {
  kv.close();
  expect(await server.stop()).toBe(0);
});

/** Seeds app/x and other/y as the admin, and returns every key with its value and mod_revision. */
async function seed(): Promise<void> {
  const admin = bearer(tokens.admin);
  expect((await outcomeOf(kv, kv.clear, { prefix: '' }, admin)).code).toBe('OK');
  for (const key of ['app/x', 'other/y'])
    expect((await outcomeOf(kv, kv.set, { key, value: SEEDED_VALUE, lease: 0, ttlMs: 0 }, admin)).code).toBe('OK');
}

async function snapshot(): Promise<string[]> {
  const admin = bearer(tokens.admin);
  const keys = await new Promise<string[]>((resolve, reject) =>
    kv.listKeys({ prefix: '', pageSize: 0, pageToken: '' }, admin, (error, response) => (error ? reject(error) : resolve(response.keys))),
  );
  const entries = await Promise.all(
    keys.map(
      (key) =>
        new Promise<string>((resolve, reject) =>
          kv.get({ key }, admin, (error, response) => (error ? reject(error) : resolve(JSON.stringify(response.entry)))),
        ),
    ),
  );
  return entries;
}

/** The server's complete audit lines so far (the last line of the output may still be arriving). */
function auditLines(): string[] {
  return server
    .output()
    .split('\n')
    .slice(0, -1)
    .filter((line) => line.includes('"audit"'));
}

describe.each(ROWS)('$rpc', (row) => {
  test.each(CALLERS.map((caller, i) => ({ caller, expected: row.expect[i] })))('$caller: $expected', async ({ caller, expected }) => {
    await seed();
    const before = await snapshot();
    const outcome = await row.call(kv, metadataOf(caller));
    expect(outcome.code).toBe(expected);
    if (expected === D) {
      expect(outcome.details).toMatch(row.denial);
      expect(outcome.trailers['kv-reason']).toBe('PERMISSION_DENIED');
    }
    if (expected === U) expect(outcome.trailers['kv-reason']).toBe('UNAUTHENTICATED');
    // A refused call (or a lost compare) writes nothing.
    if (expected !== 'OK') expect(await snapshot()).toEqual(before);
  });
});

test('a denial reads the same whether the key exists or not', async () => {
  await seed();
  const asOtherWriter = bearer(tokens['writer of other/']);
  const existing = await outcomeOf(kv, kv.get, { key: 'app/x' }, asOtherWriter);
  const missing = await outcomeOf(kv, kv.get, { key: 'app/nope' }, asOtherWriter);
  expect(existing.code).toBe(D);
  expect(missing.code).toBe(D);
  expect(missing.details.replace('app/nope', 'app/x')).toBe(existing.details);
  // The HTTP date header is the only thing allowed to differ: the two calls may straddle a second.
  const { date: _missingDate, ...missingTrailers } = missing.trailers;
  const { date: _existingDate, ...existingTrailers } = existing.trailers;
  expect(missingTrailers).toEqual(existingTrailers);
  expect(Object.keys(missingTrailers)).toContain('kv-reason');
});

test('a huge key in a denial is named by its start, in the answer and in the audit line', async () => {
  const huge = `app/${'k'.repeat(1_000_000)}`;
  const outcome = await outcomeOf(kv, kv.set, { key: huge, value: 1, lease: 0, ttlMs: 0 }, bearer(tokens['reader of app/']));
  expect(outcome.code).toBe(D);
  expect(outcome.details.length).toBeLessThan(400);
  expect(outcome.details).toContain(`"app/${'k'.repeat(196)}…"`);
  const line = await pollUntil('the audit line', () => auditLines().find((l) => l.includes('"audit":"denied"') && l.includes('kkkk…')));
  expect(line.length).toBeLessThan(1000);
});

test('denials and admin actions are audited, one line each, without tokens or values', async () => {
  await seed();
  await outcomeOf(kv, kv.set, { key: 'app/audited', value: 'no', lease: 0, ttlMs: 0 }, bearer(tokens['reader of app/']));
  await outcomeOf(kv, kv.clear, { prefix: 'other/' }, bearer(tokens.admin));
  // The server writes the admin line once the Clear has been answered: wait for it to come through the pipe.
  await pollUntil('the admin line', () => (auditLines().some((l) => l.includes('"prefix":"other/"')) ? true : undefined));
  const lines = auditLines().map((line) => JSON.parse(line) as Record<string, unknown>);
  expect(lines).toContainEqual(
    expect.objectContaining({
      audit: 'denied',
      identity: 'token:reader of app/',
      method: '/kv.v1.KeyValueService/Set',
      key: 'app/audited',
      permission: 'write',
      code: 'PERMISSION_DENIED',
      peer: expect.stringMatching(/^127\.0\.0\.1:\d+$/) as unknown,
    }),
  );
  expect(lines).toContainEqual(
    expect.objectContaining({
      audit: 'admin',
      identity: 'token:admin',
      method: '/kv.v1.KeyValueService/Clear',
      prefix: 'other/',
      code: 'OK',
    }),
  );
  expect(lines).toContainEqual(expect.objectContaining({ audit: 'denied', identity: 'anonymous', code: 'UNAUTHENTICATED' }));
  for (const token of Object.values(tokens)) expect(server.output()).not.toContain(token);
  expect(server.output()).not.toContain(SEEDED_VALUE);
});

test('a Txn audits the Clear of the branch that ran as an admin action, not the one of the branch that did not', async () => {
  await seed();
  // app/x exists: the compare fails, and the failure branch runs.
  const txn = {
    compare: [{ key: 'app/x', result: 1, modRevision: 0 }],
    success: [{ clear: { prefix: 'not-run/' } }],
    failure: [{ clear: { prefix: 'ran/' } }],
  };
  expect((await outcomeOf(kv, kv.txn, txn, bearer(tokens.admin))).code).toBe('OK');
  const txnLines = (): Record<string, unknown>[] =>
    auditLines()
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((line) => line.method === '/kv.v1.KeyValueService/Txn' && line.audit === 'admin');
  await pollUntil('the admin line', () => (txnLines().some((line) => line.prefix === 'ran/') ? true : undefined));
  expect(txnLines()).toEqual([expect.objectContaining({ audit: 'admin', prefix: 'ran/', permission: 'admin', code: 'OK' })]);
});

test("revoking a lease, keeping it alive or listing its keys needs the permission on the lease's keys, and a denial does not name them", async () => {
  await seed();
  const admin = bearer(tokens.admin);
  const lease = await new Promise<number>((resolve, reject) =>
    kv.grantLease({ ttlMs: 60_000 }, admin, (error, response) => (error ? reject(error) : resolve(response.id))),
  );
  expect((await outcomeOf(kv, kv.set, { key: 'app/x', value: 'leased', lease, ttlMs: 0 }, admin)).code).toBe('OK');
  const asReader = bearer(tokens['reader of app/']);
  const asOtherWriter = bearer(tokens['writer of other/']);
  expect((await outcomeOf(kv, kv.leaseInfo, { id: lease, keys: true }, asReader)).code).toBe('OK');
  const hidden = await outcomeOf(kv, kv.leaseInfo, { id: lease, keys: true }, asOtherWriter);
  expect(hidden).toMatchObject({
    code: D,
    details: `permission denied: read on every key attached to lease ${lease} is needed and this caller's role does not grant it on all of them`,
  });
  const before = await snapshot();
  const refused = await outcomeOf(kv, kv.revokeLease, { id: lease }, asReader);
  expect(refused).toMatchObject({ code: D, details: expect.stringContaining(`write on every key attached to lease ${lease} is needed`) });
  // A KeepAlive answers the refusal for that lease alone; the stream goes on for the caller's other leases (an empty one here).
  const empty = await new Promise<number>((resolve, reject) =>
    kv.grantLease({ ttlMs: 60_000 }, admin, (error, response) => (error ? reject(error) : resolve(response.id))),
  );
  const keptAlive = await keepAliveAnswers(kv.keepAlive(asReader), [lease, empty, lease, empty]);
  const denial = {
    id: lease,
    ttlMs: 0,
    error: {
      code: status.PERMISSION_DENIED,
      reason: ErrorReason.PERMISSION_DENIED,
      message: `permission denied: write on every key attached to lease ${lease} is needed and this caller's role does not grant it on all of them`,
    },
  };
  const refreshed = { id: empty, ttlMs: 60_000, error: undefined };
  expect(keptAlive).toEqual({ answers: [denial, refreshed, denial, refreshed], ended: 'OK' });
  for (const outcome of [hidden, refused]) expect(outcome.details).not.toContain('app/x');
  expect(await snapshot()).toEqual(before);
  const asWriter = bearer(tokens['writer of app/']);
  expect(await keepAliveAnswers(kv.keepAlive(asWriter), [lease])).toEqual({
    answers: [{ id: lease, ttlMs: 60_000, error: undefined }],
    ended: 'OK',
  });
  // The audit log, which only the operator reads, names the key that was denied.
  await pollUntil('the denial in the audit log', () => server.output().includes(`"key":"app/x","lease":${lease}`) || undefined);
  expect((await outcomeOf(kv, kv.revokeLease, { id: lease }, asWriter)).code).toBe('OK');
});

/** Sends a KeepAlive for each of `ids` on `stream`, then half-closes it: the answers, and how the stream ended. */
function keepAliveAnswers(
  stream: ClientDuplexStream<KeepAliveRequest, KeepAliveResponse>,
  ids: number[],
): Promise<{ answers: KeepAliveResponse[]; ended: string }> {
  const answers: KeepAliveResponse[] = [];
  stream.on('data', (answer: KeepAliveResponse) => answers.push(answer));
  for (const id of ids) stream.write({ id });
  stream.end();
  return new Promise((resolve) => {
    stream.once('error', (error: ServiceError) => resolve({ answers, ended: `${status[error.code]}: ${error.details}` }));
    stream.once('end', () => resolve({ answers, ended: 'OK' }));
  });
}

test("attaching a key to another role's lease (Set, a Txn's set) needs write on the keys already attached to it; the denial names the lease", async () => {
  await seed();
  const asWriter = bearer(tokens['writer of app/']);
  const asOtherWriter = bearer(tokens['writer of other/']);
  const lease = await new Promise<number>((resolve, reject) =>
    kv.grantLease({ ttlMs: 60_000 }, asWriter, (error, response) => (error ? reject(error) : resolve(response.id))),
  );
  expect((await outcomeOf(kv, kv.set, { key: 'app/x', value: 'leased', lease, ttlMs: 0 }, asWriter)).code).toBe('OK');
  const before = await snapshot();
  const denial = {
    code: D,
    details: `permission denied: write on every key attached to lease ${lease} is needed and this caller's role does not grant it on all of them`,
  };
  // The other role may write other/y, but not app/x, which the lease holds.
  expect(await outcomeOf(kv, kv.set, { key: 'other/y', value: 'hijack', lease, ttlMs: 0 }, asOtherWriter)).toMatchObject(denial);
  const txn = { compare: [], success: [{ set: { key: 'other/y', value: 'hijack', lease, ttlMs: 0 } }], failure: [] };
  expect(await outcomeOf(kv, kv.txn, txn, asOtherWriter)).toMatchObject(denial);
  expect(await snapshot()).toEqual(before);
  // So the lease's owner still keeps it alive and revokes it.
  expect((await keepAliveOutcomeOf(kv, lease, asWriter)).code).toBe('OK');
  expect((await outcomeOf(kv, kv.revokeLease, { id: lease }, asWriter)).code).toBe('OK');
  // A lease of its own, or one with nothing attached, it may attach its keys to.
  const empty = await new Promise<number>((resolve, reject) =>
    kv.grantLease({ ttlMs: 60_000 }, asWriter, (error, response) => (error ? reject(error) : resolve(response.id))),
  );
  expect((await outcomeOf(kv, kv.set, { key: 'other/y', value: 'leased', lease: empty, ttlMs: 0 }, asOtherWriter)).code).toBe('OK');
});

test('a call with two authorization headers is refused, whichever comes first, unary or streaming', async () => {
  await seed();
  // grpc-js and Node's HTTP/2 client cannot send a header twice; curl can.
  const frame = (message: Uint8Array): Buffer => {
    const header = Buffer.alloc(5);
    header.writeUInt32BE(message.length, 1);
    return Buffer.concat([header, message]);
  };
  const calls: [string, Buffer][] = [
    ['Get', frame(GetRequest.encode({ key: 'app/x' }).finish())],
    ['Watch', frame(WatchRequest.encode({ key: 'app/x', startRevision: 1, prevEntry: false, fragment: false }).finish())],
  ];
  const bad = 'kv_' + 'A'.repeat(43);
  for (const [method, body] of calls) {
    for (const order of [
      [tokens.admin, bad],
      [bad, tokens.admin],
    ]) {
      // The server is another process: curl may block this one.
      const { stdout } = spawnSync(
        'curl',
        [
          '-s',
          '--http2',
          '--cacert',
          caFile,
          '-D',
          '-',
          '-o',
          '/dev/null',
          '--max-time',
          '10',
          '-H',
          'content-type: application/grpc',
          '-H',
          'te: trailers',
          '-H',
          `authorization: Bearer ${order[0]}`,
          '-H',
          `authorization: Bearer ${order[1]}`,
          '--data-binary',
          '@-',
          `https://${server.address}/kv.v1.KeyValueService/${method}`,
        ],
        { input: body, encoding: 'utf8' },
      );
      expect(stdout).toMatch(/^grpc-status: 16\r?$/m);
      expect(decodeURIComponent(/^grpc-message: (.*?)\r?$/m.exec(stdout)?.[1] ?? '')).toContain('send exactly one');
    }
  }
});

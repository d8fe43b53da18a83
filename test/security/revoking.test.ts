/**
 * Revoking on a running server: a token removed from the auth file, or a
 * role narrowed, and SIGHUP end the streams the caller already has open
 * (Watch, KeepAlive), on the gRPC port and on the HTTP port, not only its
 * next calls. A stream the new file still allows goes on.
 */
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { type ServiceError, status } from '@grpc/grpc-js';
import { KvClient } from '@kv/client';
import { hashToken, mintToken } from '../../src/auth/token';
import type { KeepAliveResponse } from '../../src/gen/kv/v1/kv';
import { KeyValueService } from '../../src/gen/kv/v1/kv_pb';
import { bearer, kvClient } from '../support/auth-fixture';
import { startServer, type RunningServer } from '../support/server-process';
import { makeTempDir, pollUntil } from '../support/temp-dirs';

type Roles = Record<string, { prefix: string; permission: 'read' | 'write' | 'admin' }[]>;

const TOKENS = { watcher: mintToken(), keeper: mintToken(), bystander: mintToken(), owner: mintToken() };

const ROLES: Roles = {
  reader: [{ prefix: 'app/', permission: 'read' }],
  writer: [{ prefix: 'app/', permission: 'write' }],
  admin: [{ prefix: '', permission: 'admin' }],
};

const EVERYONE = { watcher: 'reader', keeper: 'writer', bystander: 'reader', owner: 'admin' };

let dir: string;
let authFile: string;
let server: RunningServer;

function writeAuth(roles: Roles, tokens: Partial<Record<keyof typeof TOKENS, string>>): void {
  const entries = Object.entries(tokens).map(([name, role]) => ({
    name,
    role,
    sha256: hashToken(TOKENS[name as keyof typeof TOKENS]).toString('hex'),
  }));
  writeFileSync(authFile, JSON.stringify({ roles, tokens: entries }));
}

beforeEach(async () => {
  dir = makeTempDir('kv-revoking-');
  authFile = path.join(dir, 'auth.json');
  writeAuth(ROLES, EVERYONE);
  server = await startServer({ args: ['--auth-file', authFile, '--http-listen', '127.0.0.1:0'] });
});

afterEach(async () => {
  expect(await server.stop()).toBe(0);
});

/** A gRPC Watch of app/ as `token`, recording what it receives and how it ends. */
function grpcWatch(token: string): { values: () => number; ended: () => string | undefined; close(): void } {
  const client = kvClient(server.address);
  const stream = client.watch({ prefix: 'app/', startRevision: 0, prevEntry: false, fragment: false }, bearer(token));
  let values = 0;
  let ended: string | undefined;
  stream.on('data', (response: { events?: unknown[] }) => (values += response.events?.length ?? 0));
  stream.on('error', (error: ServiceError) => (ended = `${status[error.code]}: ${error.details}`));
  stream.on('end', () => (ended ??= 'OK'));
  return { values: () => values, ended: () => ended, close: () => (stream.cancel(), client.close()) };
}

/** A gRPC KeepAlive stream as `token`: ping() sends one request and resolves with the answer, or the error the stream ended with. */
function grpcKeepAlive(token: string): { ping(id: number): Promise<string>; ended(): string | undefined; close(): void } {
  const client = kvClient(server.address);
  const stream = client.keepAlive(bearer(token));
  let waiting: ((answer: string) => void) | undefined;
  let ended: string | undefined;
  // A lease refused is answered in the stream (which goes on), as the status a call would end with.
  stream.on('data', ({ ttlMs, error }: KeepAliveResponse) =>
    waiting?.(error === undefined ? `ttl ${ttlMs}` : `${status[error.code]}: ${error.message}`),
  );
  stream.on('error', (error: ServiceError) => {
    ended = `${status[error.code]}: ${error.details}`;
    waiting?.(ended);
  });
  return {
    ping: (id) =>
      ended !== undefined
        ? Promise.resolve(ended)
        : new Promise((resolve) => {
            waiting = resolve;
            stream.write({ id });
          }),
    ended: () => ended,
    close: () => (stream.cancel(), client.close()),
  };
}

/** A lease of 60 s with app/<name> attached, made by the keeper. */
async function keepersLease(name: string): Promise<number> {
  const keeper = new KvClient(server.address, { token: TOKENS.keeper, retry: { attempts: 1 } });
  const { id } = await keeper.grantLease(60_000);
  await keeper.set(`app/${name}`, 1, { lease: id });
  keeper.close();
  return id;
}

test('a revoked token ends its open Watch and KeepAlive (UNAUTHENTICATED); another caller’s Watch goes on', async () => {
  const owner = new KvClient(server.address, { token: TOKENS.owner, retry: { attempts: 1 } });
  const lease = await keepersLease('k');
  const watch = grpcWatch(TOKENS.watcher);
  const bystander = grpcWatch(TOKENS.bystander);
  const keepAlive = grpcKeepAlive(TOKENS.keeper);
  expect(await keepAlive.ping(lease)).toBe('ttl 60000');
  await owner.set('app/a', 1);
  await pollUntil('both watches to see app/a', () => (watch.values() > 0 && bystander.values() > 0 ? true : undefined));

  writeAuth(ROLES, { bystander: 'reader', owner: 'admin' });
  server.child.kill('SIGHUP');
  expect(await pollUntil('the revoked Watch to end', watch.ended)).toBe(
    'UNAUTHENTICATED: token revoked: it was removed from the auth file while this call was open',
  );
  expect(await keepAlive.ping(lease)).toMatch(/^UNAUTHENTICATED: token revoked/);

  const seen = bystander.values();
  await owner.set('app/b', 2);
  await pollUntil('the other Watch to go on', () => (bystander.values() > seen ? true : undefined));
  expect(bystander.ended()).toBeUndefined();
  for (const stream of [watch, bystander, keepAlive]) stream.close();
  owner.close();
});

test('a role narrowed under an open Watch ends it (PERMISSION_DENIED); a KeepAlive ping is checked against the role as it is now', async () => {
  const lease = await keepersLease('k');
  const watch = grpcWatch(TOKENS.watcher);
  const keepAlive = grpcKeepAlive(TOKENS.keeper);
  expect(await keepAlive.ping(lease)).toBe('ttl 60000');

  writeAuth({ ...ROLES, reader: [{ prefix: 'other/', permission: 'read' }], writer: [{ prefix: 'app/', permission: 'read' }] }, EVERYONE);
  server.child.kill('SIGHUP');
  expect(await pollUntil('the Watch to end', watch.ended)).toBe(
    'PERMISSION_DENIED: permission denied: read on prefix "app/" is needed and this caller\'s role does not grant it',
  );
  const denied = `PERMISSION_DENIED: permission denied: write on every key attached to lease ${lease} is needed and this caller's role does not grant it on all of them`;
  expect(await keepAlive.ping(lease)).toBe(denied);
  // The stream is still open: each ping is checked again, and answered.
  expect(keepAlive.ended()).toBeUndefined();
  expect(await keepAlive.ping(lease)).toBe(denied);
  watch.close();
  keepAlive.close();
});

test('on the HTTP port too: a revoked token ends its Watch (HTTP/1.1), a narrowed role’s KeepAlive is refused in the stream (HTTP/2)', async () => {
  const lease = await keepersLease('k');
  const base = `http://${server.httpAddress}`;
  const asCaller = (token: string, httpVersion: '1.1' | '2') =>
    createClient(
      KeyValueService,
      createConnectTransport({
        baseUrl: base,
        httpVersion,
        interceptors: [(next) => (request) => (request.header.set('authorization', `Bearer ${token}`), next(request))],
      }),
    );

  let watched = 0;
  const watchEnded = (async () => {
    for await (const message of asCaller(TOKENS.watcher, '1.1').watch({ target: { case: 'prefix', value: 'app/' } }))
      watched += message.events.length;
    return 'OK';
  })().catch((error: unknown) => Code[ConnectError.from(error).code]);

  // The KeepAlive's requests, sent one at a time; 'end' ends them.
  const pings: (bigint | 'end')[] = [];
  let wake: (() => void) | undefined;
  const requests = (async function* () {
    for (;;) {
      const id = pings.shift();
      if (id === 'end') return;
      if (id !== undefined) yield { id };
      else await new Promise<void>((resolve) => (wake = resolve));
    }
  })();
  const answers: string[] = [];
  const keepAliveEnded = (async () => {
    for await (const { ttlMs, error } of asCaller(TOKENS.keeper, '2').keepAlive(requests))
      answers.push(error === undefined ? `ttl ${ttlMs}` : `${Code[error.code]}: ${error.message}`);
    return 'OK';
  })().catch((error: unknown) => Code[ConnectError.from(error).code]);
  const ping = (id: bigint | 'end' = BigInt(lease)): void => {
    pings.push(id);
    wake?.();
  };
  ping();
  await pollUntil('the first KeepAlive answer', () => (answers.length === 1 ? true : undefined));

  const owner = new KvClient(server.address, { token: TOKENS.owner, retry: { attempts: 1 } });
  await owner.set('app/a', 1);
  await pollUntil('the Watch to see app/a', () => (watched > 0 ? true : undefined));
  owner.close();

  writeAuth({ ...ROLES, writer: [{ prefix: 'app/', permission: 'read' }] }, { keeper: 'writer', owner: 'admin' });
  server.child.kill('SIGHUP');
  expect(await pollUntil('the Watch to end', () => Promise.race([watchEnded, Promise.resolve(undefined)]))).toBe('Unauthenticated');
  ping();
  // Refused in the stream, which stays open for the caller's other leases until it ends it.
  await pollUntil('the second KeepAlive answer', () => (answers.length === 2 ? true : undefined));
  ping('end');
  expect(await keepAliveEnded).toBe('OK');
  expect(answers).toEqual([
    'ttl 60000',
    `PermissionDenied: permission denied: write on every key attached to lease ${lease} is needed and this caller's role does not grant it on all of them`,
  ]);
});

test("on the HTTP port, a token revoked between a call's headers and its body does not carry the call (unary or stream)", async () => {
  const [host, port] = (server.httpAddress as string).split(':');
  // Headers now, the body later: the port checks credentials as the headers arrive.
  const held = (method: string, body: string): { send(): Promise<{ status: number; body: string }> } => {
    const request = http.request({
      host,
      port: Number(port),
      method: 'POST',
      path: `/kv.v1.KeyValueService/${method}`,
      headers: {
        'content-type': method === 'Watch' ? 'application/connect+json' : 'application/json',
        authorization: `Bearer ${TOKENS.keeper}`,
        'content-length': String(method === 'Watch' ? body.length + 5 : body.length),
      },
    });
    request.flushHeaders();
    const answered = new Promise<{ status: number; body: string }>((resolve, reject) => {
      request.on('response', (response) => {
        let text = '';
        response.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: text }));
      });
      request.on('error', reject);
    });
    return {
      send: () => {
        if (method === 'Watch') {
          const frame = Buffer.alloc(5);
          frame.writeUInt32BE(body.length, 1);
          request.write(frame);
        }
        request.end(body);
        return answered;
      },
    };
  };
  const set = held('Set', JSON.stringify({ key: 'app/late', value: 1 }));
  const watch = held('Watch', JSON.stringify({ prefix: 'app/' }));
  // Both requests' headers have reached the server once another call through the port has been answered.
  const owner = new KvClient(server.address, { token: TOKENS.owner, retry: { attempts: 1 } });
  try {
    await owner.set('app/before', 1);
    writeAuth(ROLES, { watcher: 'reader', owner: 'admin' });
    server.child.kill('SIGHUP');
    await pollUntil('the keeper token refused', async () =>
      (await owner.get('app/before')) !== undefined && (await fetchStatus(TOKENS.keeper)) === 401 ? true : undefined,
    );
    const setAnswer = await set.send();
    expect(setAnswer.status).toBe(401);
    expect(setAnswer.body).toContain('token revoked');
    expect(await owner.get('app/late')).toBeUndefined();
    const watchAnswer = await watch.send();
    expect(watchAnswer.body).toContain('"code":"unauthenticated"');
  } finally {
    owner.close();
  }

  async function fetchStatus(token: string): Promise<number> {
    const response = await fetch(`http://${server.httpAddress}/kv.v1.KeyValueService/Get`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ key: 'app/before' }),
    });
    return response.status;
  }
});

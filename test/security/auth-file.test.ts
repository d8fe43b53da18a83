/**
 * The auth file's life on a running server (plaintext on loopback, YAML):
 * tokens minted by `kv-server token create` work after a SIGHUP, a bad file
 * on reload keeps the previous one, removing an entry revokes the token;
 * health and reflection stay open; unknown tokens from one address are
 * rate-limited (on a server of its own, whose budget no other test spends).
 */
import { chmodSync, chownSync, lstatSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { credentials, makeGenericClientConstructor, type ServiceError, status } from '@grpc/grpc-js';
import { KvClient, KvError } from '@kv/client';
import { readAuthFile } from '../../src/auth/read-auth-file';
import { findToken } from '../../src/auth/token';
import { bearer, kvClient, outcomeOf, writeAuthFile } from '../support/auth-fixture';
import { healthOf } from '../support/health';
import { runServerToExit, startServer, type RunningServer } from '../support/server-process';
import { makeTempDir, pollUntil } from '../support/temp-dirs';
import { makeTestCertificates } from '../support/test-certificates';

const AUTH_FILE = `# roles for the tests
roles:
  writer:
    - { prefix: "app/", permission: write }
tokens: []
`;

let dir: string;
let authFile: string;
let server: RunningServer;

beforeAll(async () => {
  dir = makeTempDir('kv-auth-file-');
  authFile = path.join(dir, 'auth.yaml');
  writeFileSync(authFile, AUTH_FILE);
  server = await startServer({ args: ['--auth-file', authFile] });
});

afterAll(async () => {
  expect(await server.stop()).toBe(0);
});

async function tokenCreate(...args: string[]): Promise<string> {
  const { code, stdout, stderr } = await runServerToExit(['token', 'create', ...args]);
  expect({ code, stderr }).toEqual({ code: 0, stderr: expect.any(String) as unknown });
  expect(stdout).toMatch(/^kv_[A-Za-z0-9_-]{43}\n$/);
  return stdout.trim();
}

async function reasonOf(kv: KvClient, key: string): Promise<string> {
  return kv.set(key, 1).then(
    () => 'OK',
    (error: unknown) => (error instanceof KvError ? error.reason : String(error)),
  );
}

test('token create adds the hash (never the token) to the file; the token works after SIGHUP, and is revoked by removing it', async () => {
  const token = await tokenCreate('--role', 'writer', '--name', 'deploy', '--auth-file', authFile);
  const file = readFileSync(authFile, 'utf8');
  expect(file).not.toContain(token);
  expect(file).toContain('# roles for the tests');
  expect(file).toMatch(/name: deploy, role: writer, sha256: [0-9a-f]{64}/);

  const kv = new KvClient(server.address, { token, retry: { attempts: 1 } });
  expect(await reasonOf(kv, 'app/a')).toBe('UNAUTHENTICATED');
  server.child.kill('SIGHUP');
  await pollUntil('the new token accepted', async () => ((await reasonOf(kv, 'app/a')) === 'OK' ? true : undefined));
  expect(await reasonOf(kv, 'elsewhere')).toBe('PERMISSION_DENIED');

  writeFileSync(authFile, AUTH_FILE);
  server.child.kill('SIGHUP');
  await pollUntil('the token revoked', async () => ((await reasonOf(kv, 'app/a')) === 'UNAUTHENTICATED' ? true : undefined));
  kv.close();
});

test('the SDK sends its token on watches too; without one a watch fails UNAUTHENTICATED', async () => {
  const token = await tokenCreate('--role', 'writer', '--auth-file', authFile);
  server.child.kill('SIGHUP');
  const kv = new KvClient(server.address, { token, retry: { attempts: 1 } });
  await pollUntil('the token accepted', async () => ((await reasonOf(kv, 'app/w')) === 'OK' ? true : undefined));
  const watch = kv.watch({ prefix: 'app/', startRevision: 1 });
  for await (const event of watch) {
    expect(event.key).toMatch(/^app\//);
    break;
  }
  const anonymous = new KvClient(server.address, { retry: { attempts: 1 } });
  const failure = await (async () => {
    for await (const _ of anonymous.watch({ prefix: 'app/' })) return undefined;
  })().then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(failure).toBeInstanceOf(KvError);
  expect((failure as KvError).reason).toBe('UNAUTHENTICATED');
  anonymous.close();
  kv.close();
  writeFileSync(authFile, AUTH_FILE);
});

test('a bad auth file on SIGHUP keeps the previous one and logs why', async () => {
  const token = await tokenCreate('--role', 'writer', '--auth-file', authFile);
  server.child.kill('SIGHUP');
  const kv = new KvClient(server.address, { token, retry: { attempts: 1 } });
  await pollUntil('the token accepted', async () => ((await reasonOf(kv, 'app/b')) === 'OK' ? true : undefined));

  writeFileSync(authFile, 'roles: [unclosed\n');
  server.child.kill('SIGHUP');
  await pollUntil('the failed reload logged', () => (server.output().includes('auth file NOT reloaded') ? true : undefined));
  expect(await reasonOf(kv, 'app/b')).toBe('OK');
  kv.close();
  writeFileSync(authFile, AUTH_FILE);
});

test('health and reflection need no credentials', async () => {
  expect(await healthOf(server.address)).toBe('SERVING');
  expect(await reflectionListsServices(server.address)).toBe(true);
});

test('--reflection off closes reflection', async () => {
  const closed = await startServer({ args: ['--auth-file', authFile, '--reflection', 'off'] });
  expect(await reflectionListsServices(closed.address)).toBe(false);
  expect(await closed.stop()).toBe(0);
});

test('unknown tokens from one address are rate-limited; then even a good token waits, while calls without one are told UNAUTHENTICATED', async () => {
  const auth = writeAuthFile(makeTempDir(), { roles: { writer: [{ prefix: 'app/', permission: 'write' }] }, tokens: { good: 'writer' } });
  const limiting = await startServer({ args: ['--auth-file', auth.file, '--auth-failures-per-minute', '3'] });
  const good = new KvClient(limiting.address, { token: auth.tokens.good, retry: { attempts: 1 } });
  expect(await reasonOf(good, 'app/c')).toBe('OK');

  const raw = kvClient(limiting.address, credentials.createInsecure());
  const guess = (): ReturnType<typeof outcomeOf> => outcomeOf(raw, raw.get, { key: 'app/c' }, bearer(`kv_${'x'.repeat(43)}`));
  for (let i = 0; i < 3; i++) expect((await guess()).code).toBe('UNAUTHENTICATED');
  const limited = await guess();
  expect(limited.code).toBe('RESOURCE_EXHAUSTED');
  expect(limited.trailers['kv-reason']).toBe('AUTH_RATE_LIMITED');
  expect(Number(limited.trailers['grpc-retry-pushback-ms'])).toBeGreaterThan(0);
  expect(await reasonOf(good, 'app/c')).toBe('AUTH_RATE_LIMITED');
  expect((await outcomeOf(raw, raw.get, { key: 'app/c' }, bearer(undefined))).code).toBe('UNAUTHENTICATED');
  // A client that goes on guessing is refused at once, and audited as a count per address, not a line per call.
  for (let i = 0; i < 30; i++) expect((await guess()).code).toBe('RESOURCE_EXHAUSTED');
  raw.close();
  good.close();
  type Line = { audit?: string; code?: string; calls?: number; peer?: string; method?: string };
  const limitedLines = (): Line[] =>
    limiting
      .output()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Line)
      .filter((line) => line.audit === 'denied' && line.code === 'RESOURCE_EXHAUSTED');
  // 32 calls refused (the 4th guess, the good token's call, 30 more): the first said at once, the rest within 10 s.
  await pollUntil(
    'the refused calls audited',
    () => (limitedLines().reduce((sum, line) => sum + (line.calls ?? 0), 0) === 32 ? true : undefined),
    20_000,
  );
  expect(limitedLines().length).toBeLessThanOrEqual(3);
  expect(limitedLines()[0]).toMatchObject({ calls: 1, peer: '127.0.0.1' });
  expect(limitedLines()[0].method).toBeUndefined();
  expect(await limiting.stop()).toBe(0);
}, 40_000);

/** Asks grpc.reflection.v1 to list services (ServerReflectionRequest{list_services: ""}, hand-encoded). */
function reflectionListsServices(address: string): Promise<boolean> {
  const bytes = { serialize: (b: Buffer): Buffer => b, deserialize: (b: Buffer): Buffer => b };
  const Reflection = makeGenericClientConstructor(
    {
      info: {
        path: '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo',
        requestStream: true,
        responseStream: true,
        requestSerialize: bytes.serialize,
        requestDeserialize: bytes.deserialize,
        responseSerialize: bytes.serialize,
        responseDeserialize: bytes.deserialize,
      },
    },
    'ServerReflection',
  );
  const client = new Reflection(address, credentials.createInsecure());
  return new Promise((resolve, reject) => {
    const call = (client as unknown as { info(): NodeJS.ReadWriteStream & { cancel(): void } }).info();
    call.on('data', (response: Buffer) => {
      resolve(response.includes(Buffer.from('kv.v1.KeyValueService')));
      call.cancel();
      client.close();
    });
    call.on('error', (error: ServiceError) => {
      client.close();
      if (error.code === status.UNIMPLEMENTED) resolve(false);
      else if (error.code !== status.CANCELLED) reject(error);
    });
    call.write(Buffer.from([0x3a, 0x00]));
    call.end();
  });
}

test('token create adds to the file KV_AUTH_FILE names, as the server reads it; --auth-file wins over it', async () => {
  const dir = makeTempDir('kv-auth-env-');
  const fromEnv = path.join(dir, 'env.yaml');
  const fromFlag = path.join(dir, 'flag.yaml');
  writeFileSync(fromEnv, AUTH_FILE, { mode: 0o600 });
  writeFileSync(fromFlag, AUTH_FILE, { mode: 0o600 });
  const byEnv = await runServerToExit(['token', 'create', '--role', 'writer', '--name', 'by-env'], { KV_AUTH_FILE: fromEnv });
  expect(byEnv).toEqual({
    code: 0,
    stdout: expect.stringMatching(/^kv_/) as unknown,
    stderr: expect.stringContaining(`to ${fromEnv}`) as unknown,
  });
  expect(readFileSync(fromEnv, 'utf8')).toMatch(/name: by-env, role: writer, sha256: [0-9a-f]{64}/);
  const byFlag = await runServerToExit(['token', 'create', '--role', 'writer', '--name', 'by-flag', '--auth-file', fromFlag], {
    KV_AUTH_FILE: fromEnv,
  });
  expect(byFlag.code).toBe(0);
  expect(readFileSync(fromFlag, 'utf8')).toContain('name: by-flag');
  expect(readFileSync(fromEnv, 'utf8')).not.toContain('by-flag');
});

test('token create through a symbolic link adds the entry to the file it points to, and the link stays a link', async () => {
  const linkDir = makeTempDir('kv-auth-link-');
  const real = path.join(linkDir, 'real.yaml');
  const link = path.join(linkDir, 'auth.yaml');
  writeFileSync(real, AUTH_FILE, { mode: 0o600 });
  symlinkSync('real.yaml', link);
  await tokenCreate('--role', 'writer', '--name', 'linked', '--auth-file', link);
  expect(lstatSync(link).isSymbolicLink()).toBe(true);
  expect(readFileSync(real, 'utf8')).toMatch(/name: linked, role: writer, sha256: [0-9a-f]{64}/);
  expect(statSync(real).mode & 0o777).toBe(0o600);
  expect(readdirSync(linkDir).sort()).toEqual(['auth.yaml', 'real.yaml']);
});

test("token create keeps the file's mode, owner and group, whatever the umask and whoever runs it", async () => {
  const file = path.join(makeTempDir('kv-auth-owner-'), 'auth.yaml');
  writeFileSync(file, AUTH_FILE);
  chmodSync(file, 0o640);
  // As root (as CI runs), the file is another user's, as a service's own auth file is: root's new file was root's, 0600.
  if (process.getuid?.() === 0) chownSync(file, 65534, 65534);
  const before = statSync(file);
  const umask = process.umask(0o077);
  try {
    await tokenCreate('--role', 'writer', '--name', 'owned', '--auth-file', file);
  } finally {
    process.umask(umask);
  }
  const after = statSync(file);
  expect(readFileSync(file, 'utf8')).toContain('name: owned');
  expect({ mode: after.mode & 0o777, uid: after.uid, gid: after.gid }).toEqual({ mode: 0o640, uid: before.uid, gid: before.gid });
});

test.each([
  ['a YAML file without "tokens"', 'auth.yaml', '# roles only\nroles:\n  writer: [{ prefix: "app/", permission: write }]\n'],
  ['a YAML file with an empty "tokens:"', 'auth.yaml', 'roles:\n  writer: [{ prefix: "app/", permission: write }]\ntokens: # none yet\n'],
  ['JSON without "tokens" in a .yaml file', 'auth.yaml', '{"roles": {"writer": [{"prefix": "app/", "permission": "write"}]}}\n'],
  ['a .json file holding YAML', 'auth.json', '# roles only\nroles: {"writer": [{"prefix": "app/", "permission": "write"}]}\n'],
])('token create adds its entry to %s, which the server takes as it is', async (_, name, text) => {
  const file = path.join(makeTempDir('kv-auth-shape-'), name);
  writeFileSync(file, text, { mode: 0o600 });
  const token = await tokenCreate('--role', 'writer', '--name', 'added', '--auth-file', file);
  const updated = readFileSync(file, 'utf8');
  // What the file said is still there: its comments too.
  for (const comment of text.match(/#.*/g) ?? []) expect(updated).toContain(comment);
  const config = readAuthFile(file);
  expect(findToken(config.tokens, token)).toMatchObject({ name: 'added', role: { name: 'writer' } });
});

test('an auth file every local user may write, or a TLS key every local user may read, is said in a warn line at start and on reload', async () => {
  const dir = makeTempDir();
  const auth = writeAuthFile(dir, { roles: { writer: [{ prefix: 'app/', permission: 'write' }] }, tokens: { good: 'writer' } });
  const certs = makeTestCertificates();
  const key = path.join(dir, 'server.key');
  writeFileSync(key, readFileSync(certs.serverKey));
  chmodSync(auth.file, 0o666);
  chmodSync(key, 0o644);
  const open = await startServer({ args: ['--auth-file', auth.file, '--tls-cert', certs.serverCert, '--tls-key', key] });
  try {
    const warned = (): string[] =>
      open
        .output()
        .split('\n')
        .filter((line) => line.includes('by every user of this machine'));
    await pollUntil('the warnings', () => (warned().length === 2 ? true : undefined));
    expect(warned().join('\n')).toContain(`${auth.file} (--auth-file) can be written by every user of this machine`);
    expect(warned().join('\n')).toContain(`${key} (--tls-key) can be read by every user of this machine`);
    // Fixed, and reloaded: nothing more is said; left open, each reload says it again.
    chmodSync(key, 0o600);
    open.child.kill('SIGHUP');
    await pollUntil('the auth file warned again', () => (warned().length === 3 ? true : undefined));
    expect(warned()[2]).toContain('(--auth-file)');
  } finally {
    expect(await open.stop()).toBe(0);
    rmSync(certs.dir, { recursive: true, force: true });
  }
});

test('over HTTP, a rate-limited address gets 429 with Retry-After (seconds), as well as grpc-retry-pushback-ms', async () => {
  const auth = writeAuthFile(makeTempDir(), { roles: { writer: [{ prefix: 'app/', permission: 'write' }] }, tokens: { good: 'writer' } });
  const limiting = await startServer({
    args: ['--auth-file', auth.file, '--auth-failures-per-minute', '1', '--http-listen', '127.0.0.1:0'],
  });
  try {
    const get = (): Promise<Response> =>
      fetch(`http://${limiting.httpAddress}/kv.v1.KeyValueService/Get`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer kv_${'x'.repeat(43)}` },
        body: '{"key":"app/a"}',
      });
    expect((await get()).status).toBe(401);
    const limited = await get();
    expect(limited.status).toBe(429);
    const pushbackMs = Number(limited.headers.get('grpc-retry-pushback-ms'));
    expect(pushbackMs).toBeGreaterThan(0);
    expect(limited.headers.get('retry-after')).toBe(String(Math.ceil(pushbackMs / 1000)));
  } finally {
    expect(await limiting.stop()).toBe(0);
  }
});

test('rate-limited refusals still counted for a later line are audited when the server stops, not lost', async () => {
  const auth = writeAuthFile(makeTempDir(), { roles: { writer: [{ prefix: 'app/', permission: 'write' }] }, tokens: { good: 'writer' } });
  const limiting = await startServer({ args: ['--auth-file', auth.file, '--auth-failures-per-minute', '3'] });
  const raw = kvClient(limiting.address, credentials.createInsecure());
  const guess = (): ReturnType<typeof outcomeOf> => outcomeOf(raw, raw.get, { key: 'app/c' }, bearer(`kv_${'y'.repeat(43)}`));
  for (let i = 0; i < 3; i++) expect((await guess()).code).toBe('UNAUTHENTICATED');
  for (let i = 0; i < 20; i++) expect((await guess()).code).toBe('RESOURCE_EXHAUSTED');
  raw.close();
  // Stopped well within the 10 s the counts wait for their line.
  expect(await limiting.stop()).toBe(0);
  const counted = limiting
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { audit?: string; code?: string; calls?: number })
    .filter((line) => line.audit === 'denied' && line.code === 'RESOURCE_EXHAUSTED')
    .reduce((sum, line) => sum + (line.calls ?? 0), 0);
  expect(counted).toBe(20);
});

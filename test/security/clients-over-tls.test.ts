/**
 * The interop scenario over mutual TLS with a bearer token, through the
 * TypeScript SDK and the Go and Python examples: the same transcript as in
 * plaintext. The token's role is admin on "example/" only (the scenario
 * clears it); the client certificate alone would be refused by the auth
 * file, so the calls pass by the token, carried over TLS.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { credentials } from '@grpc/grpc-js';
import { issue, issueServer, makeCa, read, type CertificateFiles, type TestCa } from '../support/certificates';
import { writeAuthFile } from '../support/auth-fixture';
import { findTool } from '../support/find-tool';
import { REPO_ROOT, startServer, type RunningServer } from '../support/server-process';
import { makeTempDir } from '../support/temp-dirs';
import { runSdkScenario } from '../interop/sdk-scenario';

const EXPECTED = readFileSync(path.join(REPO_ROOT, 'test/interop/expected-transcript.txt'), 'utf8');
const VENV_PYTHON = path.join(REPO_ROOT, 'clients/python/.venv/bin/python');
const GO_BUILD_TIMEOUT_MS = 240_000;
const run = promisify(execFile);

let dir: string;
let ca: TestCa;
let clientCert: CertificateFiles;
let token: string;
let serverArgs: string[];

beforeAll(() => {
  dir = makeTempDir('kv-clients-tls-');
  ca = makeCa(dir, 'ca');
  const serverCert = issueServer(dir, ca);
  clientCert = issue(dir, ca, 'example-client');
  const auth = writeAuthFile(dir, { roles: { example: [{ prefix: 'example/', permission: 'admin' }] }, tokens: { example: 'example' } });
  token = auth.tokens.example;
  serverArgs = ['--tls-cert', serverCert.cert, '--tls-key', serverCert.key, '--tls-client-ca', ca.cert, '--auth-file', auth.file];
});

/** A fresh server per client, so every transcript's revisions start at 1 (as in test/interop). */
async function transcriptOf(client: (address: string) => Promise<string>): Promise<string> {
  const server: RunningServer = await startServer({ args: serverArgs });
  try {
    return await client(server.address);
  } finally {
    expect(await server.stop()).toBe(0);
  }
}

const tlsArgs = (dash: string): string[] => [
  ...[`${dash}cacert`, ca.cert, `${dash}cert`, clientCert.cert, `${dash}key`, clientCert.key, `${dash}token`, token],
];

test('the TypeScript SDK: credentials.createSsl with a client certificate, and the token option', async () => {
  const tls = credentials.createSsl(read(ca.cert), read(clientCert.key), read(clientCert.cert));
  const transcript = await transcriptOf(async (address) => `${(await runSdkScenario(address, { credentials: tls, token })).join('\n')}\n`);
  expect(transcript).toBe(EXPECTED);
});

const goTest = findTool('go') === undefined ? test.skip : test;

/** The Go example, built once for the tests that run it. */
let goBinary: Promise<string> | undefined;
function goExample(): Promise<string> {
  goBinary ??= (async () => {
    const binary = path.join(makeTempDir('kv-go-example-'), 'kv-example');
    await run(findTool('go')!, ['build', '-o', binary, './cmd/kv-example'], {
      cwd: path.join(REPO_ROOT, 'clients/go'),
      timeout: GO_BUILD_TIMEOUT_MS,
    });
    return binary;
  })();
  return goBinary;
}
goTest(
  'the Go example: -cacert -cert -key -token',
  async () => {
    const binary = await goExample();
    const transcript = await transcriptOf(
      async (address) => (await run(binary, ['-addr', address, ...tlsArgs('-')], { timeout: 30_000 })).stdout,
    );
    expect(transcript).toBe(EXPECTED);
  },
  GO_BUILD_TIMEOUT_MS + 30_000,
);

const pythonTest = existsSync(VENV_PYTHON) || process.env.KV_REQUIRE_ALL_CLIENTS === '1' ? test : test.skip;
pythonTest('the Python example: --cacert --cert --key --token', async () => {
  const example = path.join(REPO_ROOT, 'clients/python/example.py');
  const transcript = await transcriptOf(
    async (address) =>
      (
        await run(VENV_PYTHON, [example, '--addr', address, ...tlsArgs('--')], {
          timeout: 30_000,
          env: { ...process.env, PYTHONIOENCODING: 'utf-8', PYTHONDONTWRITEBYTECODE: '1' },
        })
      ).stdout,
  );
  expect(transcript).toBe(EXPECTED);
});

/**
 * A loopback server in plaintext with an auth file (kvctl and the SDK send a
 * token there): the Go and Python examples send theirs too, over local
 * credentials, which refuse a connection that is not local; to any other
 * address without TLS they refuse the token before connecting (exit 2).
 */
async function plaintextTranscriptOf(client: (address: string, token: string) => Promise<string>): Promise<string> {
  const auth = writeAuthFile(makeTempDir('kv-loopback-token-'), {
    roles: { example: [{ prefix: 'example/', permission: 'admin' }] },
    tokens: { example: 'example' },
  });
  const server: RunningServer = await startServer({ args: ['--auth-file', auth.file] });
  try {
    return await client(server.address, auth.tokens.example);
  } finally {
    expect(await server.stop()).toBe(0);
  }
}

goTest(
  'the Go example: -token alone to a loopback server in plaintext; refused to another address without TLS',
  async () => {
    const binary = await goExample();
    const transcript = await plaintextTranscriptOf(
      async (address, loopbackToken) => (await run(binary, ['-addr', address, '-token', loopbackToken], { timeout: 30_000 })).stdout,
    );
    expect(transcript).toBe(EXPECTED);
    const refused = await run(binary, ['-addr', '192.0.2.1:50051', '-token', 'kv_x'], { timeout: 30_000 }).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 2, stderr: expect.stringContaining('-token needs TLS to a server that is not on this machine') });
  },
  GO_BUILD_TIMEOUT_MS + 30_000,
);

pythonTest('the Python example: --token alone to a loopback server in plaintext; refused to another address without TLS', async () => {
  const example = path.join(REPO_ROOT, 'clients/python/example.py');
  const env = { ...process.env, PYTHONIOENCODING: 'utf-8', PYTHONDONTWRITEBYTECODE: '1' };
  const transcript = await plaintextTranscriptOf(
    async (address, loopbackToken) =>
      (await run(VENV_PYTHON, [example, '--addr', address, '--token', loopbackToken], { timeout: 30_000, env })).stdout,
  );
  expect(transcript).toBe(EXPECTED);
  const refused = await run(VENV_PYTHON, [example, '--addr', '192.0.2.1:50051', '--token', 'kv_x'], { timeout: 30_000, env }).catch(
    (e: unknown) => e,
  );
  expect(refused).toMatchObject({ code: 2, stderr: expect.stringContaining('--token needs TLS to a server that is not on this machine') });
});

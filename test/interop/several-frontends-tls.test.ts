/**
 * The Go and Python examples given several frontends (host:port,host:port)
 * over mutual TLS with a bearer token: each frontend's certificate is
 * checked against that frontend's own host, as when it is given alone, so a
 * list mixing a name and an IP literal, or of IPv6 literals, runs the
 * interop scenario; a list none of whose hosts the certificate names is
 * refused; a list whose first frontend is down runs it every time. A fresh
 * server per test, so revisions start at 1.
 */
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { issue, makeCa, type CertificateFiles, type TestCa } from '../support/certificates';
import { writeAuthFile } from '../support/auth-fixture';
import { freePort } from '../support/free-port';
import { startServer } from '../support/server-process';
import { makeTempDir } from '../support/temp-dirs';
import {
  buildGoExample,
  clientTest,
  GO_BUILD_TIMEOUT_MS,
  missingTools,
  missingVenv,
  PYTHON_ENV,
  PYTHON_EXAMPLE,
  run,
  VENV_PYTHON,
} from './example-clients';

const EXPECTED = readFileSync(path.join(__dirname, 'expected-transcript.txt'), 'utf8');
const RUN_TIMEOUT_MS = 30_000;
// The Python example sent its first call to a frontend that was down in about half its runs.
const RUNS_WITH_ONE_DOWN = 10;

let dir: string;
let ca: TestCa;
let clientCert: CertificateFiles;
let token: string;
let authFile: string;

beforeAll(() => {
  dir = makeTempDir('kv-frontends-tls-');
  ca = makeCa(dir, 'ca');
  clientCert = issue(dir, ca, 'example-client');
  const auth = writeAuthFile(dir, { roles: { example: [{ prefix: 'example/', permission: 'admin' }] }, tokens: { example: 'example' } });
  token = auth.tokens.example;
  authFile = auth.file;
});

afterAll(() => rm(dir, { recursive: true, force: true }));

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** How one example run ended: its exit code and output, failed or not. */
async function outcomeOf(file: string, args: string[], env?: NodeJS.ProcessEnv): Promise<Outcome> {
  try {
    const { stdout, stderr } = await run(file, args, { timeout: RUN_TIMEOUT_MS, env });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    if (typeof failed.code !== 'number') throw error;
    return { code: failed.code, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}

/**
 * Starts a fresh mutual-TLS server with a certificate for `san` on `listen`,
 * and runs the client given `addresses(port)` with the CA, client
 * certificate and token.
 */
async function runAgainst(
  client: (addr: string, tls: (dash: string) => string[]) => Promise<Outcome>,
  san: string[],
  listen: string,
  addresses: (port: string) => string,
): Promise<Outcome> {
  const serverCert = issue(dir, ca, 'localhost', { san, file: `server-${san.join('-').replace(/[^\w]/g, '_')}` });
  const server = await startServer({
    listen,
    args: ['--tls-cert', serverCert.cert, '--tls-key', serverCert.key, '--tls-client-ca', ca.cert, '--auth-file', authFile],
  });
  try {
    const port = server.address.slice(server.address.lastIndexOf(':') + 1);
    const tls = (dash: string): string[] => [
      ...[`${dash}cacert`, ca.cert, `${dash}cert`, clientCert.cert, `${dash}key`, clientCert.key, `${dash}token`, token],
    ];
    return await client(addresses(port), tls);
  } finally {
    expect(await server.stop()).toBe(0);
    await rm(server.dataDir, { recursive: true, force: true });
  }
}

/**
 * A transcript with its revisions counted from the one before its first
 * write, as if from a fresh server: a run after others on the same server
 * prints the same lines, its revisions higher by as many as those made.
 */
function fromFreshServer(stdout: string): string {
  const first = /^set example\/app\/config -> revision (\d+)$/m.exec(stdout);
  const before = first === null ? 0 : Number(first[1]) - 1;
  const revision = /(revision|current_revision|create_revision|mod_revision|expected_revision) (\d+)/g;
  return stdout.replace(revision, (_, word: string, n: string) => `${word} ${Number(n) - before}`);
}

const IPV4_SERVER = ['DNS:localhost', 'IP:127.0.0.1'];
const IPV6_SERVER = ['DNS:localhost', 'IP:::1'];
const LOCALHOST_ONLY = ['DNS:localhost'];

describe.each([
  {
    name: 'the Go example (-addr)',
    missing: () => missingTools(['go']),
    timeoutMs: GO_BUILD_TIMEOUT_MS + RUN_TIMEOUT_MS,
    client: (() => {
      let built: Promise<string> | undefined;
      const binary = (): Promise<string> => {
        built ??= (async () => {
          const file = path.join(dir, 'kv-example');
          await buildGoExample(file);
          return file;
        })();
        return built;
      };
      return async (addr: string, tls: (dash: string) => string[]): Promise<Outcome> =>
        outcomeOf(await binary(), ['-addr', addr, ...tls('-')]);
    })(),
    refusal: /x509: .*127\.0\.0\.1/,
  },
  {
    name: 'the Python example (--addr)',
    missing: missingVenv,
    timeoutMs: RUN_TIMEOUT_MS,
    client: (addr: string, tls: (dash: string) => string[]): Promise<Outcome> =>
      outcomeOf(VENV_PYTHON, [PYTHON_EXAMPLE, '--addr', addr, ...tls('--')], PYTHON_ENV),
    refusal: /Hostname Verification Check failed/,
  },
])('$name given several frontends over TLS', ({ missing, timeoutMs, client, refusal }) => {
  clientTest(
    'an IP literal and a name, each checked against its own certificate name: the interop transcript',
    missing(),
    async () => {
      const outcome = await runAgainst(client, IPV4_SERVER, '127.0.0.1:0', (port) => `127.0.0.1:${port},localhost:${port}`);
      expect(outcome).toEqual({ code: 0, stdout: EXPECTED, stderr: '' });
    },
    timeoutMs,
  );

  clientTest(
    'IPv6 literals ([::1]:port): the interop transcript',
    missing(),
    async () => {
      const outcome = await runAgainst(client, IPV6_SERVER, '[::1]:0', (port) => `[::1]:${port},[::1]:${port}`);
      expect(outcome).toEqual({ code: 0, stdout: EXPECTED, stderr: '' });
    },
    timeoutMs,
  );

  clientTest(
    `the first frontend down (nothing listens on its port): the interop transcript in each of ${RUNS_WITH_ONE_DOWN} runs`,
    missing(),
    async () => {
      const down = await freePort();
      const outcomes: Outcome[] = [];
      await runAgainst(
        async (addr, tls) => {
          // New processes, one after another: each starts with both channels new, where the race was.
          for (let run = 0; run < RUNS_WITH_ONE_DOWN; run++) outcomes.push(await client(addr, tls));
          return outcomes[0];
        },
        IPV4_SERVER,
        '127.0.0.1:0',
        (port) => `127.0.0.1:${down},127.0.0.1:${port}`,
      );
      const everyRun = outcomes.map(({ code, stdout, stderr }) => ({ code, stdout: fromFreshServer(stdout), stderr }));
      expect(everyRun).toEqual(Array(RUNS_WITH_ONE_DOWN).fill({ code: 0, stdout: EXPECTED, stderr: '' }));
    },
    timeoutMs + RUNS_WITH_ONE_DOWN * RUN_TIMEOUT_MS,
  );

  clientTest(
    'a certificate that names none of the hosts given is refused',
    missing(),
    async () => {
      const outcome = await runAgainst(client, LOCALHOST_ONLY, '127.0.0.1:0', (port) => `127.0.0.1:${port},127.0.0.1:${port}`);
      expect(outcome.code).not.toBe(0);
      expect(outcome.stdout).toBe('');
      expect(outcome.stderr).toMatch(refusal);
    },
    timeoutMs,
  );
});

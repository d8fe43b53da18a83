/**
 * The Go and Python examples report a failure in one line and a non-zero
 * exit, as a user's program should: a server that is not there, a
 * certificate file that is not there (the Python one printed a traceback),
 * and flags given wrong, refused before any channel is made: exit 2 for a
 * misused flag, 1 for a file that is not what its flag needs. Given a
 * client certificate without its key, grpcio's C core aborted the Python
 * one (SIGABRT), and the Go one said "open : no such file or directory".
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { issue, makeCa, type CertificateFiles, type TestCa } from '../support/certificates';
import { freePort } from '../support/free-port';
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

interface Outcome {
  /** The exit code, or the signal that ended the process. */
  code: unknown;
  stderr: string;
}

/** Runs a client to its exit: its code (or signal) and stderr. */
async function failing(file: string, args: string[], env?: NodeJS.ProcessEnv): Promise<Outcome> {
  return run(file, args, { env, timeout: 30_000 }).then(
    ({ stderr }) => ({ code: 0, stderr }),
    (error: { code?: unknown; signal?: unknown; stderr?: string }) => ({
      code: error.signal ?? error.code,
      stderr: error.stderr ?? '',
    }),
  );
}

const lines = (stderr: string): string[] => stderr.split('\n').filter((l) => l !== '');

function expectOneLine({ code, stderr }: Outcome, line: RegExp): void {
  expect(code).toBe(1);
  expect(lines(stderr)).toEqual([expect.stringMatching(line)]);
}

/** Arguments, and the exit code and the one line of stderr they must give. */
type Case = [args: string[], code: number, line: RegExp];

/** Runs every case, then compares them all at once, so a failure shows each case's outcome. */
async function expectCases(client: (args: string[]) => Promise<Outcome>, cases: Case[]): Promise<void> {
  const outcomes: { args: string[]; code: unknown; stderr: string[] }[] = [];
  for (const [args] of cases) {
    const { code, stderr } = await client(args);
    outcomes.push({ args, code, stderr: lines(stderr) });
  }
  expect(outcomes).toEqual(cases.map(([args, code, line]) => ({ args, code, stderr: [expect.stringMatching(line)] })));
}

let dir: string;
let ca: TestCa;
let client: CertificateFiles;
let other: CertificateFiles;
let emptyFile: string;
let encryptedKey: string;

beforeAll(() => {
  dir = makeTempDir('kv-example-flags-');
  ca = makeCa(dir, 'ca');
  client = issue(dir, ca, 'example-client');
  other = issue(dir, ca, 'other-client');
  emptyFile = path.join(dir, 'empty.pem');
  writeFileSync(emptyFile, '');
  encryptedKey = path.join(dir, 'encrypted.key');
  execFileSync('openssl', ['pkey', '-in', client.key, '-aes256', '-passout', 'pass:secret', '-out', encryptedKey]);
  mkdirSync(path.join(dir, 'a-directory'));
});

clientTest(
  'the Python example: an unreachable server and a missing certificate file are one line each, exit 1',
  missingVenv(),
  async () => {
    const address = `127.0.0.1:${await freePort()}`;
    expectOneLine(await failing(VENV_PYTHON, [PYTHON_EXAMPLE, '--addr', address], PYTHON_ENV), /^kv-example: UNAVAILABLE: /);
    expectOneLine(
      await failing(VENV_PYTHON, [PYTHON_EXAMPLE, '--addr', address, '--cacert', '/nonexistent/ca.crt'], PYTHON_ENV),
      /^kv-example: --cacert: cannot read \/nonexistent\/ca\.crt: No such file or directory$/,
    );
  },
  60_000,
);

clientTest(
  'the Python example: --cert without --key (or the reverse), empty names and files, and unusable TLS files are one line each, before any channel (it aborted with SIGABRT)',
  missingVenv(),
  async () => {
    // Nothing listens there: a check that let a channel be made would end in UNAVAILABLE instead.
    const address = `127.0.0.1:${await freePort()}`;
    await expectCases(
      (args) => failing(VENV_PYTHON, [PYTHON_EXAMPLE, ...(args[0] === '--addr' ? [] : ['--addr', address]), ...args], PYTHON_ENV),
      [
        [['--cacert', ca.cert, '--cert', client.cert], 2, /^kv-example: --cert and --key go together$/],
        [['--cacert', ca.cert, '--key', client.key], 2, /^kv-example: --cert and --key go together$/],
        [['--cert', client.cert, '--key', client.key], 2, /^kv-example: --cert and --key need TLS: give --cacert too$/],
        [['--cacert', ca.cert, '--cert', '', '--key', client.key], 2, /^kv-example: --cert: the file name is empty$/],
        [['--cacert', ca.cert, '--cert', client.cert, '--key', ''], 2, /^kv-example: --key: the file name is empty$/],
        [['--cacert', ''], 2, /^kv-example: --cacert: the file name is empty$/],
        [['--addr', `${address},`], 2, /^kv-example: --addr: an address is empty in '127\.0\.0\.1:\d+,'$/],
        [
          ['--cacert', ca.cert, '--token', 'not ascii ✓'],
          2,
          /^kv-example: --token \(env KV_TOKEN\) must be printable ASCII without spaces/,
        ],
        [['--cacert', ca.cert, '--cert', emptyFile, '--key', client.key], 1, /^kv-example: --cert: \S+empty\.pem holds no PEM certificate/],
        [['--cacert', ca.cert, '--cert', client.cert, '--key', emptyFile], 1, /^kv-example: --key: \S+empty\.pem holds no PEM private key/],
        [['--cacert', emptyFile], 1, /^kv-example: --cacert: \S+empty\.pem holds no PEM certificate/],
        [['--cacert', ca.key], 1, /^kv-example: --cacert: \S+ca\.key holds no PEM certificate/],
        [['--cacert', path.join(dir, 'a-directory')], 1, /^kv-example: --cacert: cannot read \S+a-directory: Is a directory$/],
        [['--cacert', ca.cert, '--cert', client.key, '--key', client.cert], 1, /^kv-example: --cert: \S+\.key holds no PEM certificate/],
        [
          ['--cacert', ca.cert, '--cert', client.cert, '--key', other.key],
          1,
          /^kv-example: --key \S+other-client\S+ is not the private key of --cert \S+ \(they do not match\)$/,
        ],
        [
          ['--cacert', ca.cert, '--cert', client.cert, '--key', encryptedKey],
          1,
          /^kv-example: --key: \S+encrypted\.key is encrypted \(passphrase-protected\).*"openssl pkey -in \S+encrypted\.key -out key\.pem"/,
        ],
        [
          ['--cacert', ca.cert, '--cert', client.cert, '--key', '/nonexistent/client.key'],
          1,
          /^kv-example: --key: cannot read \/nonexistent\/client\.key: No such file or directory$/,
        ],
        // The right files pass the checks: the call is made, and fails for want of a server.
        [['--cacert', ca.cert, '--cert', client.cert, '--key', client.key], 1, /^kv-example: UNAVAILABLE: /],
      ],
    );
  },
  120_000,
);

/** The Go example, built once for this file's tests. */
let goExample: Promise<string> | undefined;
const builtGoExample = (): Promise<string> =>
  (goExample ??= (async () => {
    const binary = path.join(makeTempDir('kv-go-example-'), 'kv-example');
    await buildGoExample(binary);
    return binary;
  })());

clientTest(
  'the Go example: the same, one line each, exit 1',
  missingTools(['go']),
  async () => {
    const binary = await builtGoExample();
    const address = `127.0.0.1:${await freePort()}`;
    expectOneLine(await failing(binary, ['-addr', address]), /^kv-example: .*Unavailable/);
    expectOneLine(await failing(binary, ['-addr', address, '-cacert', '/nonexistent/ca.crt']), /^kv-example: .*no such file or directory/);
  },
  GO_BUILD_TIMEOUT_MS + 60_000,
);

clientTest(
  'the Go example: -cert without -key (or the reverse) and empty names are one line each, exit 2 (it said "open : no such file or directory")',
  missingTools(['go']),
  async () => {
    const binary = await builtGoExample();
    const address = `127.0.0.1:${await freePort()}`;
    await expectCases(
      (args) => failing(binary, [...(args[0] === '-addr' ? [] : ['-addr', address]), ...args]),
      [
        [['-cacert', ca.cert, '-cert', client.cert], 2, /^kv-example: -cert and -key go together$/],
        [['-cacert', ca.cert, '-key', client.key], 2, /^kv-example: -cert and -key go together$/],
        [['-cert', client.cert, '-key', client.key], 2, /^kv-example: -cert and -key need TLS: give -cacert too$/],
        [['-cacert', ca.cert, '-cert', '', '-key', client.key], 2, /^kv-example: -cert: the file name is empty$/],
        [['-cacert', ''], 2, /^kv-example: -cacert: the file name is empty$/],
        [['-addr', `${address},`], 2, /^kv-example: -addr: an address is empty in "127\.0\.0\.1:\d+,"$/],
        // The right files pass the checks: the call is made, and fails for want of a server.
        [['-cacert', ca.cert, '-cert', client.cert, '-key', client.key], 1, /^kv-example: .*Unavailable/],
      ],
    );
  },
  GO_BUILD_TIMEOUT_MS + 60_000,
);

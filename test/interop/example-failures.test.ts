/**
 * The Go and Python examples report a failure in one line and a non-zero
 * exit, as a user's program should: a server that is not there, a
 * certificate file that is not there. The Python one printed a traceback.
 */
import path from 'node:path';
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

/** Runs a client to its exit: its code and stderr. */
async function failing(file: string, args: string[], env?: NodeJS.ProcessEnv): Promise<{ code: unknown; stderr: string }> {
  return run(file, args, { env, timeout: 30_000 }).then(
    ({ stderr }) => ({ code: 0, stderr }),
    (error: { code?: unknown; stderr?: string }) => ({ code: error.code, stderr: error.stderr ?? '' }),
  );
}

function expectOneLine({ code, stderr }: { code: unknown; stderr: string }, line: RegExp): void {
  expect(code).toBe(1);
  expect(stderr.split('\n').filter((l) => l !== '')).toEqual([expect.stringMatching(line)]);
}

clientTest(
  'the Python example: an unreachable server and a missing certificate file are one line each, exit 1',
  missingVenv(),
  async () => {
    const address = `127.0.0.1:${await freePort()}`;
    expectOneLine(await failing(VENV_PYTHON, [PYTHON_EXAMPLE, '--addr', address], PYTHON_ENV), /^kv-example: UNAVAILABLE: /);
    expectOneLine(
      await failing(VENV_PYTHON, [PYTHON_EXAMPLE, '--addr', address, '--cacert', '/nonexistent/ca.crt'], PYTHON_ENV),
      /^kv-example: .*No such file or directory.*ca\.crt/,
    );
  },
  60_000,
);

clientTest(
  'the Go example: the same, one line each, exit 1',
  missingTools(['go']),
  async () => {
    const binary = path.join(makeTempDir('kv-go-example-'), 'kv-example');
    await buildGoExample(binary);
    const address = `127.0.0.1:${await freePort()}`;
    expectOneLine(await failing(binary, ['-addr', address]), /^kv-example: .*Unavailable/);
    expectOneLine(await failing(binary, ['-addr', address, '-cacert', '/nonexistent/ca.crt']), /^kv-example: .*no such file or directory/);
  },
  GO_BUILD_TIMEOUT_MS + 60_000,
);

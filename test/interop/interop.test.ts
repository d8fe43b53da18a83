import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { findTool } from '../support/find-tool';
import { REPO_ROOT, startServer } from '../support/server-process';
import { makeTempDir } from '../support/temp-dirs';
import { runSdkScenario } from './sdk-scenario';

/**
 * One scenario, four clients: the TypeScript SDK, the Go example, the Python
 * example and grpcurl (through reflection only) each run it against a fresh
 * server, so revisions start at 1 for all of them, and each must print the
 * expected transcript line for line; equal to it, they are equal to each
 * other.
 */
const EXPECTED = readFileSync(path.join(__dirname, 'expected-transcript.txt'), 'utf8');
const GO_MODULE = path.join(REPO_ROOT, 'clients/go');
const PYTHON_CLIENT = path.join(REPO_ROOT, 'clients/python');
const VENV_PYTHON = path.join(PYTHON_CLIENT, '.venv/bin/python');
// A cold Go build of the example (grpc and protobuf) takes a while on two cores.
const GO_BUILD_TIMEOUT_MS = 240_000;
const SCENARIO_TIMEOUT_MS = 30_000;

const run = promisify(execFile);

/** Starts a fresh server, runs one client's scenario against it, returns the transcript. */
async function transcriptOf(client: (address: string) => Promise<string>): Promise<string> {
  const server = await startServer();
  try {
    return await client(server.address);
  } finally {
    await server.stop();
    await rm(server.dataDir, { recursive: true, force: true });
  }
}

/** Why a client cannot run here, or undefined if it can. Under KV_REQUIRE_ALL_CLIENTS=1 findTool throws instead. */
function missingTools(tools: string[]): string | undefined {
  for (const tool of tools) {
    try {
      if (findTool(tool) === undefined) return `${tool} is not on PATH or in .tools/bin (scripts/install-client-tools.sh installs it)`;
    } catch (error) {
      return (error as Error).message;
    }
  }
  return undefined;
}

function missingVenv(): string | undefined {
  if (existsSync(VENV_PYTHON)) return undefined;
  const reason = 'clients/python/.venv is missing (scripts/install-client-tools.sh creates it)';
  return process.env.KV_REQUIRE_ALL_CLIENTS === '1' ? `${reason}; required because KV_REQUIRE_ALL_CLIENTS=1` : reason;
}

/** The test of one client: run when it can be; otherwise skipped with the reason printed, or failed if every client is required. */
function clientTest(name: string, missing: string | undefined, body: () => Promise<void>, timeoutMs: number): void {
  if (missing === undefined) {
    test(name, body, timeoutMs);
  } else if (process.env.KV_REQUIRE_ALL_CLIENTS === '1') {
    test(name, () => {
      throw new Error(missing);
    });
  } else {
    process.stdout.write(`skipping interop client "${name}": ${missing}\n`);
    test.skip(name, body);
  }
}

/** PATH with the directories of the tools a child process needs first. */
function pathWith(tools: string[]): string {
  const dirs = tools.map((tool) => path.dirname(findTool(tool)!));
  return [...new Set(dirs), process.env.PATH ?? ''].join(path.delimiter);
}

describe('one scenario, four clients, one transcript', () => {
  test(
    'the TypeScript SDK',
    async () => {
      const transcript = await transcriptOf(async (address) => `${(await runSdkScenario(address)).join('\n')}\n`);
      expect(transcript).toBe(EXPECTED);
    },
    SCENARIO_TIMEOUT_MS,
  );

  clientTest(
    'the Go example (clients/go/cmd/kv-example)',
    missingTools(['go']),
    async () => {
      const binDir = makeTempDir('kv-go-example-');
      try {
        const binary = path.join(binDir, 'kv-example');
        // Built here, not only vetted in CI, so the test runs the code a user would.
        await run(findTool('go')!, ['build', '-o', binary, './cmd/kv-example'], { cwd: GO_MODULE, timeout: GO_BUILD_TIMEOUT_MS });
        const transcript = await transcriptOf(async (address) => {
          const { stdout } = await run(binary, ['-addr', address], { timeout: SCENARIO_TIMEOUT_MS });
          return stdout;
        });
        expect(transcript).toBe(EXPECTED);
      } finally {
        await rm(binDir, { recursive: true, force: true });
      }
    },
    GO_BUILD_TIMEOUT_MS + SCENARIO_TIMEOUT_MS,
  );

  clientTest(
    'the Python example (clients/python/example.py)',
    missingVenv(),
    async () => {
      const transcript = await transcriptOf(async (address) => {
        const { stdout } = await run(VENV_PYTHON, [path.join(PYTHON_CLIENT, 'example.py'), '--addr', address], {
          timeout: SCENARIO_TIMEOUT_MS,
          // UTF-8 output whatever the locale; no __pycache__ beside the generated code.
          env: { ...process.env, PYTHONIOENCODING: 'utf-8', PYTHONDONTWRITEBYTECODE: '1' },
        });
        return stdout;
      });
      expect(transcript).toBe(EXPECTED);
    },
    SCENARIO_TIMEOUT_MS,
  );

  clientTest(
    'grpcurl through server reflection (test/interop/grpcurl-scenario.sh)',
    missingTools(['grpcurl', 'gojq']),
    async () => {
      const transcript = await transcriptOf(async (address) => {
        const { stdout } = await run('bash', [path.join(__dirname, 'grpcurl-scenario.sh'), address], {
          timeout: SCENARIO_TIMEOUT_MS,
          env: { ...process.env, PATH: pathWith(['grpcurl', 'gojq']) },
        });
        return stdout;
      });
      expect(transcript).toBe(EXPECTED);
    },
    SCENARIO_TIMEOUT_MS,
  );
});

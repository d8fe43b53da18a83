import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { findTool } from '../support/find-tool';
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
import { runSdkScenario } from './sdk-scenario';

/**
 * One scenario, four clients: the TypeScript SDK, the Go example, the Python
 * example and grpcurl (through reflection only) each run it against a fresh
 * server, so revisions start at 1 for all of them, and each must print the
 * expected transcript line for line; equal to it, they are equal to each
 * other.
 */
const EXPECTED = readFileSync(path.join(__dirname, 'expected-transcript.txt'), 'utf8');
const SCENARIO_TIMEOUT_MS = 30_000;

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
        await buildGoExample(binary);
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
        const { stdout } = await run(VENV_PYTHON, [PYTHON_EXAMPLE, '--addr', address], { timeout: SCENARIO_TIMEOUT_MS, env: PYTHON_ENV });
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

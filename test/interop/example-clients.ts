/**
 * Running the Go and Python examples from a test: where they are, building
 * the Go one, and skipping (or, under KV_REQUIRE_ALL_CLIENTS=1, failing) a
 * client whose tool is missing.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { findTool } from '../support/find-tool';
import { REPO_ROOT } from '../support/server-process';

export const GO_MODULE = path.join(REPO_ROOT, 'clients/go');
export const PYTHON_CLIENT = path.join(REPO_ROOT, 'clients/python');
export const PYTHON_EXAMPLE = path.join(PYTHON_CLIENT, 'example.py');
export const VENV_PYTHON = path.join(PYTHON_CLIENT, '.venv/bin/python');
// A cold Go build of the example (grpc and protobuf) takes a while on two cores.
export const GO_BUILD_TIMEOUT_MS = 240_000;
/** The Python example's environment: UTF-8 output whatever the locale; no __pycache__ beside the generated code. */
export const PYTHON_ENV = { ...process.env, PYTHONIOENCODING: 'utf-8', PYTHONDONTWRITEBYTECODE: '1' };

export const run = promisify(execFile);

/** Builds clients/go/cmd/kv-example to `binary`: built by the tests, not only vetted, so they run the code a user would. */
export async function buildGoExample(binary: string): Promise<void> {
  await run(findTool('go')!, ['build', '-o', binary, './cmd/kv-example'], { cwd: GO_MODULE, timeout: GO_BUILD_TIMEOUT_MS });
}

/** Why a client cannot run here, or undefined if it can. Under KV_REQUIRE_ALL_CLIENTS=1 findTool throws instead. */
export function missingTools(tools: string[]): string | undefined {
  for (const tool of tools) {
    try {
      if (findTool(tool) === undefined) return `${tool} is not on PATH or in .tools/bin (scripts/install-client-tools.sh installs it)`;
    } catch (error) {
      return (error as Error).message;
    }
  }
  return undefined;
}

export function missingVenv(): string | undefined {
  if (existsSync(VENV_PYTHON)) return undefined;
  const reason = 'clients/python/.venv is missing (scripts/install-client-tools.sh creates it)';
  return process.env.KV_REQUIRE_ALL_CLIENTS === '1' ? `${reason}; required because KV_REQUIRE_ALL_CLIENTS=1` : reason;
}

/** The test of one client: run when it can be; otherwise skipped with the reason printed, or failed if every client is required. */
export function clientTest(name: string, missing: string | undefined, body: () => Promise<void>, timeoutMs: number): void {
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

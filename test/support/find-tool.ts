import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from './server-process';

/**
 * Finds an external tool (grpcurl, go, python) on PATH or in .tools/bin,
 * where scripts/install-client-tools.sh puts the pinned ones. Returns
 * undefined if absent — unless KV_REQUIRE_ALL_CLIENTS=1 (set by .ci/run),
 * where a missing tool is a failure, not a skip.
 */
export function findTool(name: string): string | undefined {
  const dirs = [path.join(REPO_ROOT, '.tools/bin'), ...(process.env.PATH ?? '').split(path.delimiter)];
  for (const dir of dirs) {
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  if (process.env.KV_REQUIRE_ALL_CLIENTS === '1') {
    throw new Error(`${name} is required (KV_REQUIRE_ALL_CLIENTS=1) but was not found; run scripts/install-client-tools.sh`);
  }
  return undefined;
}

/** `test` when the tool exists, otherwise `test.skip` with the reason printed once. */
export function testWithTool(name: string): { tool: string | undefined; test: jest.It } {
  const tool = findTool(name);
  if (tool === undefined) {
    process.stdout.write(`skipping tests that need ${name}: not on PATH or in .tools/bin (scripts/install-client-tools.sh installs it)\n`);
    return { tool, test: test.skip };
  }
  return { tool, test };
}

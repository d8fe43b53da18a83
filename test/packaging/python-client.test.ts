import { execFile } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { testWithTool } from '../support/find-tool';
import { REPO_ROOT, startServer } from '../support/server-process';
import { makeTempDir } from '../support/temp-dirs';

/**
 * The Python client as a user installs it: `pip install ./clients/python`
 * into a fresh venv (dependencies and the build backend from PyPI), then the
 * example run from another directory against a real server, importing the
 * installed kv_client package, not the working tree.
 */
const run = promisify(execFile);
const INSTALL_TIMEOUT_MS = 240_000;
const { tool: python, test: testPython } = testWithTool('python3');

testPython(
  'pip install ./clients/python in a fresh venv; the example runs from anywhere and prints the interop transcript',
  async () => {
    const work = makeTempDir('kv-python-package-');
    const server = await startServer();
    try {
      await run(python!, ['-m', 'venv', path.join(work, 'venv')], { timeout: INSTALL_TIMEOUT_MS });
      const venvPython = path.join(work, 'venv/bin/python');
      const pip = ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', path.join(REPO_ROOT, 'clients/python')];
      await run(venvPython, pip, { cwd: work, timeout: INSTALL_TIMEOUT_MS });

      const env = { ...process.env, PYTHONIOENCODING: 'utf-8', PYTHONDONTWRITEBYTECODE: '1' };
      const where = await run(venvPython, ['-c', 'import kv_client; print(kv_client.__file__)'], { cwd: work, env });
      expect(where.stdout).toContain(path.join(work, 'venv'));
      // No top-level `kv` package: that name belongs to another project on PyPI.
      await expect(run(venvPython, ['-c', 'import kv'], { cwd: work, env })).rejects.toMatchObject({
        stderr: expect.stringContaining("No module named 'kv'"),
      });

      const example = await run(venvPython, [path.join(REPO_ROOT, 'clients/python/example.py'), '--addr', server.address], {
        cwd: work,
        env,
        timeout: 30_000,
      });
      expect(example.stdout).toBe(readFileSync(path.join(REPO_ROOT, 'test/interop/expected-transcript.txt'), 'utf8'));
    } finally {
      await server.stop();
      rmSync(work, { recursive: true, force: true });
    }
  },
  INSTALL_TIMEOUT_MS * 2,
);

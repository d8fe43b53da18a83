/**
 * The Python client's minimum Python: kv-client's requires-python is no
 * lower than what its dependencies (grpcio, protobuf) require, and
 * scripts/install-client-tools.sh refuses an older Python up front, in one
 * line, before it installs anything.
 */
import { chmodSync, copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { REPO_ROOT } from '../support/server-process';
import { makeTempDir } from '../support/temp-dirs';
import { clientTest, missingVenv, PYTHON_CLIENT, run, VENV_PYTHON } from './example-clients';

const PYPROJECT = path.join(PYTHON_CLIENT, 'pyproject.toml');

/** The X.Y of a ">=X.Y" requirement, among comma-separated ones; undefined if there is none. */
function minimumOf(specifier: string): [number, number] | undefined {
  const match = /(?:^|,)\s*>=\s*(\d+)\.(\d+)/.exec(specifier);
  return match ? [Number(match[1]), Number(match[2])] : undefined;
}

const atLeast = (a: [number, number], b: [number, number]): boolean => a[0] > b[0] || (a[0] === b[0] && a[1] >= b[1]);

function pyproject(): { requiresPython: string; dependencies: string[] } {
  const text = readFileSync(PYPROJECT, 'utf8');
  const requiresPython = /^requires-python = "([^"]*)"$/m.exec(text)?.[1];
  const block = /^dependencies = \[([^\]]*)\]/m.exec(text)?.[1];
  if (requiresPython === undefined || block === undefined) throw new Error(`${PYPROJECT}: no requires-python or dependencies`);
  // "grpcio>=1.85.1,<2" -> grpcio
  const dependencies = [...block.matchAll(/"([A-Za-z0-9_.-]+)/g)].map((m) => m[1]);
  return { requiresPython, dependencies };
}

clientTest(
  "kv-client's requires-python is no lower than its dependencies' (as installed in clients/python/.venv)",
  missingVenv(),
  async () => {
    const { requiresPython, dependencies } = pyproject();
    expect(dependencies).toEqual(expect.arrayContaining(['grpcio', 'protobuf']));
    const script = [
      'import importlib.metadata, json, sys',
      "print(json.dumps({name: importlib.metadata.metadata(name)['Requires-Python'] for name in sys.argv[1:]}))",
    ].join('\n');
    const { stdout } = await run(VENV_PYTHON, ['-c', script, ...dependencies]);
    const theirs = JSON.parse(stdout) as Record<string, string | null>;
    const ours = minimumOf(requiresPython);
    expect(ours).toBeDefined();
    for (const [name, specifier] of Object.entries(theirs)) {
      const needed = specifier === null ? undefined : minimumOf(specifier);
      if (needed === undefined) continue;
      expect({ name, needs: specifier, requiresPython, enough: atLeast(ours!, needed) }).toEqual({
        name,
        needs: specifier,
        requiresPython,
        enough: true,
      });
    }
  },
  30_000,
);

test('install-client-tools.sh refuses a Python older than requires-python, in one line, before installing anything', async () => {
  // A copy of the script and the pyproject.toml it reads, so nothing in the working tree can be touched.
  const scratch = makeTempDir('kv-install-client-tools-');
  try {
    mkdirSync(path.join(scratch, 'scripts'));
    mkdirSync(path.join(scratch, 'clients/python'), { recursive: true });
    copyFileSync(path.join(REPO_ROOT, 'scripts/install-client-tools.sh'), path.join(scratch, 'scripts/install-client-tools.sh'));
    copyFileSync(PYPROJECT, path.join(scratch, 'clients/python/pyproject.toml'));
    // A "python3" that says it is 3.9 and can do nothing else.
    const oldPython = path.join(scratch, 'python3.9');
    writeFileSync(oldPython, '#!/bin/sh\n[ "$1" = -c ] && echo 3.9 && exit 0\nexit 97\n');
    chmodSync(oldPython, 0o755);

    const outcome = await run('bash', [path.join(scratch, 'scripts/install-client-tools.sh')], {
      env: { ...process.env, PYTHON: oldPython },
      timeout: 30_000,
    }).then(
      () => ({ code: 0, stdout: '', stderr: '' }),
      (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
    );
    const wanted = minimumOf(pyproject().requiresPython)!.join('.');
    expect(outcome).toEqual({
      code: 1,
      stdout: '',
      stderr: `install-client-tools: the Python client needs Python >= ${wanted}; ${oldPython} is 3.9 (set PYTHON=/path/to/python3)\n`,
    });
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
});

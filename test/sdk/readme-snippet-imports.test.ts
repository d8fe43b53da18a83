/**
 * Each ```ts block of the SDK's README compiles when pasted into a file of
 * its own: whatever it uses from @kv/client it imports. Only what the
 * README's prose gives a block is declared here: a client `kv`, the work
 * the lock example does, and the lock example as './with-lock'. (The
 * "Several frontends" block used KvClient without importing it.)
 */
import { execFile } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../support/server-process';
import { makeTempDir } from '../support/temp-dirs';

const GIVEN = `import type { JsonValue, KvClient } from '@kv/client';
declare global {
  const kv: KvClient;
  function buildReport(signal: AbortSignal): Promise<JsonValue>;
}
`;

test('every TypeScript block of the SDK README imports what it uses from @kv/client', async () => {
  const text = readFileSync(path.join(REPO_ROOT, 'clients/typescript/README.md'), 'utf8');
  const blocks = [...text.matchAll(/```ts\n([\s\S]*?)```/g)].map((match) => match[1]);
  expect(blocks.length).toBeGreaterThanOrEqual(9);
  const dir = makeTempDir('kv-sdk-readme-');
  try {
    const names = blocks.map((code, i) => {
      const name = `block-${i + 1}.ts`;
      // `export {}` makes a block without imports a module too: its names stay its own.
      writeFileSync(path.join(dir, name), `${code}\nexport {};\n`);
      return name;
    });
    writeFileSync(path.join(dir, 'given.d.ts'), GIVEN);
    writeFileSync(path.join(dir, 'with-lock.ts'), `export * from '${path.join(REPO_ROOT, 'clients/typescript/examples/with-lock')}';\n`);
    writeFileSync(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'es2022',
          module: 'es2022',
          moduleResolution: 'bundler',
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          types: ['node'],
          typeRoots: [path.join(REPO_ROOT, 'node_modules/@types')],
          paths: { '@kv/client': [path.join(REPO_ROOT, 'clients/typescript/src/index.ts')] },
        },
        files: ['given.d.ts', 'with-lock.ts', ...names],
      }),
    );
    const tsc = path.join(REPO_ROOT, 'node_modules/typescript/bin/tsc');
    const errors = await promisify(execFile)(process.execPath, [tsc, '-p', dir], { cwd: dir, timeout: 120_000 }).then(
      () => '',
      (error: { stdout: string }) => error.stdout,
    );
    expect(errors).toBe('');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 150_000);

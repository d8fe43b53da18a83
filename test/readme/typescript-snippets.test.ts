import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../support/server-process';
import { makeTempDir } from '../support/temp-dirs';

/**
 * Every ```ts block of the README and the SDK's README typechecks against
 * the SDK's sources, each block as a module of its own (top-level await
 * allowed). Blocks go on from earlier ones, so what they take as given is
 * declared once here: a client `kv` (a block may declare its own), the
 * lock example as './with-lock', the work the lock example does, and the
 * connect-es stubs as './gen/kv/v1/kv_pb'. Whatever else a block uses from
 * @kv/client it imports (so it compiles when pasted into a file alone).
 * The README's `npx buf generate` line, run as in a user's project, must
 * write those stubs.
 */
const FILES = ['README.md', 'clients/typescript/README.md'];

const GIVEN = `import type { JsonValue, KvClient as Client } from '@kv/client';
declare global {
  const kv: Client;
  function buildReport(signal: AbortSignal): Promise<JsonValue>;
}
`;

function snippets(file: string): string[] {
  const text = readFileSync(path.join(REPO_ROOT, file), 'utf8');
  return [...text.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
}

test('every TypeScript snippet in the READMEs typechecks against the SDK', async () => {
  const dir = makeTempDir('kv-readme-ts-');
  try {
    const names: string[] = [];
    for (const file of FILES) {
      snippets(file).forEach((code, i) => {
        const name = `${file.replaceAll(/[/.]/g, '-')}-${i + 1}.ts`;
        // `export {}` makes a block without imports a module too: its names stay its own.
        writeFileSync(path.join(dir, name), `${code}\nexport {};\n`);
        names.push(name);
      });
    }
    expect(names.length).toBeGreaterThanOrEqual(9);
    writeFileSync(path.join(dir, 'given.d.ts'), GIVEN);
    writeFileSync(path.join(dir, 'with-lock.ts'), `export * from '${path.join(REPO_ROOT, 'clients/typescript/examples/with-lock')}';\n`);
    // The connect-es example imports stubs from ./gen, as `npx buf generate` with protoc-gen-es writes them.
    mkdirSync(path.join(dir, 'gen/kv/v1'), { recursive: true });
    writeFileSync(path.join(dir, 'gen/kv/v1/kv_pb.ts'), `export * from '${path.join(REPO_ROOT, 'src/gen/kv/v1/kv_pb')}';\n`);
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
          paths: {
            '@kv/client': [path.join(REPO_ROOT, 'clients/typescript/src/index.ts')],
            '@connectrpc/*': [path.join(REPO_ROOT, 'node_modules/@connectrpc/*')],
            '@bufbuild/*': [path.join(REPO_ROOT, 'node_modules/@bufbuild/*')],
          },
        },
        files: ['given.d.ts', 'with-lock.ts', ...names],
      }),
    );
    const tsc = path.join(REPO_ROOT, 'node_modules/typescript/bin/tsc');
    const result = await promisify(execFile)(process.execPath, [tsc, '-p', dir], { cwd: dir, timeout: 120_000 }).then(
      () => '',
      (error: { stdout: string }) => error.stdout,
    );
    expect(result).toBe('');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 150_000);

test("the README's buf generate line writes, in a project of the user's, the connect-es stubs that npm run generate does", async () => {
  const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const line = readme.split('\n').find((l) => l.startsWith('npx buf generate /path/to/kv/proto '));
  if (line === undefined) throw new Error('README has no `npx buf generate /path/to/kv/proto ...` line');
  const dir = makeTempDir('kv-readme-connect-es-');
  try {
    // The project has installed what the README's npm install lines do: here the repository's own packages.
    writeFileSync(path.join(dir, 'package.json'), '{ "private": true }\n');
    symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(dir, 'node_modules'));
    await promisify(execFile)('sh', ['-c', line.replace('/path/to/kv/proto', `'${path.join(REPO_ROOT, 'proto')}'`)], {
      cwd: dir,
      timeout: 60_000,
    });
    expect(readFileSync(path.join(dir, 'gen/kv/v1/kv_pb.ts'), 'utf8')).toBe(
      readFileSync(path.join(REPO_ROOT, 'src/gen/kv/v1/kv_pb.ts'), 'utf8'),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 90_000);

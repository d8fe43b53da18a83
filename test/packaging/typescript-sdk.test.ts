import { execFile } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { npmEnv } from '../support/npm-env';
import { REPO_ROOT, startServer, type RunningServer } from '../support/server-process';
import { makeTempDir } from '../support/temp-dirs';

/**
 * The SDK as a user outside this repository gets it: `npm pack` makes a
 * tarball, a fresh project in a temp directory installs it, and CommonJS,
 * ESM and TypeScript code there use it against a real server.
 */
const run = promisify(execFile);
const INSTALL_TIMEOUT_MS = 180_000;

let server: RunningServer;
let project: string;

beforeAll(async () => {
  server = await startServer();
  project = makeTempDir('kv-sdk-consumer-');
  const { stdout } = await run('npm', ['pack', '--workspace', 'clients/typescript', '--pack-destination', project, '--json'], {
    cwd: REPO_ROOT,
    env: npmEnv(),
    timeout: INSTALL_TIMEOUT_MS,
  });
  const [{ filename }] = JSON.parse(stdout.slice(stdout.indexOf('['))) as { filename: string }[];
  writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'sdk-consumer', private: true }));
  await run('npm', ['install', `./${filename}`, '--no-audit', '--no-fund', '--prefer-offline'], {
    cwd: project,
    env: npmEnv(),
    timeout: INSTALL_TIMEOUT_MS,
  });
}, INSTALL_TIMEOUT_MS * 2);

afterAll(async () => {
  await server?.stop();
  if (project !== undefined) rmSync(project, { recursive: true, force: true });
});

async function runInProject(file: string, source: string): Promise<string> {
  writeFileSync(path.join(project, file), source);
  const { stdout } = await run(process.execPath, [file, server.address], { cwd: project, timeout: 30_000 });
  return stdout;
}

test('CommonJS: require("@kv/client") sets and gets', async () => {
  const stdout = await runInProject(
    'use.cjs',
    `const { KvClient } = require('@kv/client');
const kv = new KvClient(process.argv[2]);
(async () => {
  await kv.set('pack/cjs', { from: 'require' });
  console.log(JSON.stringify((await kv.get('pack/cjs')).value));
  kv.close();
})();
`,
  );
  expect(stdout).toBe('{"from":"require"}\n');
});

test('ESM: import { KvClient, KvError } from "@kv/client" works, errors included', async () => {
  const stdout = await runInProject(
    'use.mjs',
    `import { KvClient, KvError } from '@kv/client';
const kv = new KvClient(process.argv[2]);
await kv.set('pack/esm', [1, 'two']);
console.log(JSON.stringify((await kv.get('pack/esm')).value));
try {
  await kv.set('pack/esm', null, { expectedRevision: 0 });
} catch (error) {
  console.log(error instanceof KvError, error.reason);
}
kv.close();
`,
  );
  expect(stdout).toBe('[1,"two"]\ntrue REVISION_MISMATCH\n');
});

test('TypeScript: the declarations typecheck for ESM and CommonJS consumers (module nodenext)', async () => {
  writeFileSync(
    path.join(project, 'use.mts'),
    `import { KvClient, KvError, type KvEntry } from '@kv/client';
const kv = new KvClient('127.0.0.1:50051', { token: 't', deadlineMs: 1000 });
const entry: KvEntry<{ n: number }> | undefined = await kv.get<{ n: number }>('k');
export const n: number | undefined = entry?.value.n;
export const isError = (e: unknown): boolean => e instanceof KvError && e.reason === 'NOT_FOUND';
`,
  );
  writeFileSync(
    path.join(project, 'use.cts'),
    `import { KvClient, credentials } from '@kv/client';
export const kv: KvClient = new KvClient('127.0.0.1:50051', { credentials: credentials.createInsecure() });
`,
  );
  const tsc = path.join(REPO_ROOT, 'node_modules/typescript/bin/tsc');
  const flags = ['--noEmit', '--strict', '--module', 'nodenext', '--target', 'es2022', '--skipLibCheck'];
  // @types/node from this repository: the consumer project would install its own.
  const types = ['--types', 'node', '--typeRoots', path.join(REPO_ROOT, 'node_modules/@types')];
  await expect(
    run(process.execPath, [tsc, ...flags, ...types, 'use.mts', 'use.cts'], { cwd: project, timeout: 60_000 }),
  ).resolves.toBeDefined();
});

test('npm install linked kvctl into node_modules/.bin, and it runs the compiled CLI', async () => {
  // In this file, after npm pack has rebuilt the SDK, so nothing else reads its dist/ meanwhile.
  const { stdout } = await run(path.join(REPO_ROOT, 'node_modules/.bin/kvctl'), ['health', '--endpoint', server.address, '-o', 'value'], {
    timeout: 30_000,
  });
  expect(stdout).toBe('SERVING\n');
});

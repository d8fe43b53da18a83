/**
 * kvctl --token-file (KV_TOKEN_FILE): the token read from a file, so that it
 * shows neither in ps nor in shell history, against a server that checks
 * tokens. A file kvctl cannot use is a usage error naming the flag, and no
 * message ever shows the token.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { type AuthFixture, writeAuthFile } from '../support/auth-fixture';
import { runKvctl, type KvctlResult } from '../support/kvctl-process';
import { startServer, type RunningServer } from '../support/server-process';
import { makeTempDir } from '../support/temp-dirs';

let server: RunningServer;
let dir: string;
let auth: AuthFixture;

beforeAll(async () => {
  dir = makeTempDir('kvctl-token-file-');
  auth = writeAuthFile(dir, { roles: { writer: [{ prefix: '', permission: 'write' }] }, tokens: { good: 'writer' } });
  server = await startServer({ args: ['--auth-file', auth.file] });
});

afterAll(async () => {
  expect(await server.stop()).toBe(0);
  rmSync(dir, { recursive: true, force: true });
});

/** A file in the test's directory holding `text`. */
function tokenFile(name: string, text: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}

const outcome = (result: KvctlResult): { code: number | null; stdout: string } => ({ code: result.code, stdout: result.stdout });

test('the token is read from the file, without the line end or spaces around it; KV_TOKEN_FILE works too', async () => {
  const good = auth.tokens.good;
  for (const [name, text] of [
    ['lf', `${good}\n`],
    ['crlf', `${good}\r\n`],
    ['bare', good],
    ['spaced', `  ${good} \n\n`],
  ]) {
    const set = await runKvctl(['set', `t/${name}`, '1', '--endpoint', server.address, '--token-file', tokenFile(name, text)]);
    expect(set).toEqual({ code: 0, stdout: expect.stringContaining('"revision"') as string, stderr: '' });
  }
  const viaEnv = await runKvctl(['get', 't/lf', '-o', 'value'], {
    env: { KV_ENDPOINTS: server.address, KV_TOKEN_FILE: tokenFile('env', `${good}\n`) },
  });
  expect(viaEnv).toEqual({ code: 0, stdout: '1\n', stderr: '' });
});

test('a wrong token from the file: exit 6, and the line does not show it nor ask for a token', async () => {
  const result = await runKvctl(['get', 'k', '--endpoint', server.address, '--token-file', tokenFile('wrong', 'not-the-token\n')]);
  expect(result).toEqual({ code: 6, stdout: '', stderr: 'kvctl: unknown or revoked token (UNAUTHENTICATED)\n' });
});

test('no token at all: the line says how to give one, --token-file first', async () => {
  const result = await runKvctl(['get', 'k', '--endpoint', server.address]);
  expect(outcome(result)).toEqual({ code: 6, stdout: '' });
  expect(result.stderr).toMatch(
    /^kvctl: [^\n]*\(UNAUTHENTICATED\): give kvctl a token with --token-file or --token \(KV_TOKEN_FILE, KV_TOKEN\)\n$/,
  );
});

test('an empty, missing or unreadable file is a usage error (exit 2), one line naming the flag or its variable', async () => {
  const empty = tokenFile('empty', ' \n');
  const missing = path.join(dir, 'missing');
  const directory = path.join(dir, 'a-directory');
  mkdirSync(directory);
  const cases: [string[], Record<string, string>, RegExp][] = [
    [['--token-file', empty], {}, new RegExp(`^kvctl: --token-file: ${empty} is empty: write the token in it\\n$`)],
    [['--token-file', missing], {}, new RegExp(`^kvctl: --token-file: cannot read ${missing}: [^\\n]*ENOENT[^\\n]*\\n$`)],
    [['--token-file', directory], {}, new RegExp(`^kvctl: --token-file: cannot read ${directory}: [^\\n]*EISDIR[^\\n]*\\n$`)],
    [[], { KV_TOKEN_FILE: missing }, new RegExp(`^kvctl: KV_TOKEN_FILE: cannot read ${missing}: [^\\n]*\\n$`)],
    // A wrong path that never ends (or a log file): refused after 64 KiB, not read until memory runs out.
    [['--token-file', ''], {}, /^kvctl: --token-file is empty: give the path of a file holding the token\n$/],
    // The token itself where its file's path goes: not repeated on stderr.
    [
      ['--token-file', auth.tokens.good],
      {},
      /^kvctl: --token-file: cannot read the file it names \(ENOENT\); the name looks like a token: [^\n]*\n$/,
    ],
    [['--token-file', '/dev/zero'], {}, /^kvctl: --token-file: \/dev\/zero holds more than 65536 bytes: is it the token file\?\n$/],
  ];
  for (const [args, env, stderr] of cases) {
    const result = await runKvctl(['get', 'k', '--endpoint', server.address, ...args], { env });
    expect(outcome(result)).toEqual({ code: 2, stdout: '' });
    expect(result.stderr).toMatch(stderr);
  }
});

test('a file whose text cannot be a token (two lines) is a usage error that names the file, not the token', async () => {
  const file = tokenFile('two-lines', `${auth.tokens.good}\nsecond-line\n`);
  const result = await runKvctl(['get', 'k', '--endpoint', server.address, '--token-file', file]);
  expect(outcome(result)).toEqual({ code: 2, stdout: '' });
  expect(result.stderr).toMatch(new RegExp(`^kvctl: --token-file ${file}: token must be [^\\n]*\\n$`));
  expect(result.stderr).not.toContain(auth.tokens.good);
});

test('a token and a token file, both flags or both variables: exit 2, and neither is shown', async () => {
  const file = tokenFile('both', `${auth.tokens.good}\n`);
  const cases: [string[], Record<string, string>, string][] = [
    [['--token', 'secret-a', '--token-file', file], {}, '--token and --token-file'],
    [[], { KV_TOKEN: 'secret-a', KV_TOKEN_FILE: file }, 'KV_TOKEN and KV_TOKEN_FILE'],
  ];
  for (const [args, env, names] of cases) {
    const result = await runKvctl(['get', 'k', '--endpoint', server.address, ...args], { env });
    expect(result).toEqual({ code: 2, stdout: '', stderr: `kvctl: ${names} both give a token: give one of them\n` });
  }
});

test('a flag wins over the other way given in the environment: --token over KV_TOKEN_FILE, --token-file over KV_TOKEN', async () => {
  const good = tokenFile('flag-wins-good', `${auth.tokens.good}\n`);
  const wrong = tokenFile('flag-wins-wrong', 'not-the-token\n');
  const tokenFlag = await runKvctl(['set', 't/flag-wins', '1', '--endpoint', server.address, '--token', auth.tokens.good], {
    env: { KV_TOKEN_FILE: wrong },
  });
  expect(tokenFlag).toEqual({ code: 0, stdout: expect.stringContaining('"revision"') as string, stderr: '' });
  const fileFlag = await runKvctl(['get', 't/flag-wins', '-o', 'value', '--endpoint', server.address, '--token-file', good], {
    env: { KV_TOKEN: 'not-the-token' },
  });
  expect(fileFlag).toEqual({ code: 0, stdout: '1\n', stderr: '' });
  // The variable is not read at all: a KV_TOKEN_FILE naming no file is no error beside --token.
  const missingFile = await runKvctl(['get', 't/flag-wins', '-o', 'value', '--endpoint', server.address, '--token', auth.tokens.good], {
    env: { KV_TOKEN_FILE: path.join(dir, 'no-such-file') },
  });
  expect(missingFile).toEqual({ code: 0, stdout: '1\n', stderr: '' });
});

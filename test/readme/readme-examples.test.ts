import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { KVCTL_SHELL, runCommand } from '../support/kvctl-process';
import { REPO_ROOT, runServerToExit, startServer, type RunningServer } from '../support/server-process';
import { makeTempDir } from '../support/temp-dirs';
import { testWithTool } from '../support/find-tool';

/**
 * The README is a promise: every grpcurl, kvctl and curl command in
 * its ```sh blocks is run here, in order, each tool against its own fresh
 * server. A ```json block right after a sh block is the output of that
 * block's last command (for a stream, the messages one after the other); a
 * ```text block is its exact stdout; a block starting with "ERROR:"
 * (grpcurl) or "kvctl:" is the error it must fail with. A grpcurl command
 * with -max-time (a Watch stream) ends with DeadlineExceeded by design.
 * grpcurl commands with -cacert run against a mutual-TLS server made from
 * docs/security.md's openssl lines and auth file. In a ```console block, a
 * `$ ` line is a command and the lines after it its stdout, where a line
 * `...` stands for any lines and `...` in a line for any text (a block that
 * shows no output is not run).
 */
const README_ADDRESS = '127.0.0.1:50051';
const README_HTTP_ADDRESS = '127.0.0.1:8080';
const README_METRICS_ADDRESS = '127.0.0.1:9090';
const { tool: grpcurl, test: testGrpcurl } = testWithTool('grpcurl');
const { test: testWithJq } = testWithTool('jq');
const { test: testWithCurl } = testWithTool('curl');

interface Example {
  commands: string[];
  expectJson?: unknown[];
  expectText?: string;
  expectError?: string[];
  /** A ```console block's output for its one command, `...` standing for anything. */
  expectConsole?: string;
  /** Its commands use TLS (-cacert). */
  tls: boolean;
}

/** The JSON values written one after another in `text` (grpcurl prints one per stream message). */
function jsonSequence(text: string): unknown[] {
  const values: unknown[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{' || c === '[') {
      if (depth++ === 0) start = i;
    } else if (c === '}' || c === ']') {
      if (--depth === 0) values.push(JSON.parse(text.slice(start, i + 1)));
    }
  }
  return values;
}

/** The examples whose sh lines contain `marker`, with the output block that follows each. */
const fencesOf = (file: string): { lang: string; body: string }[] =>
  [...readFileSync(path.join(REPO_ROOT, file), 'utf8').matchAll(/```(\w*)\n([\s\S]*?)```/g)].map((m) => ({ lang: m[1], body: m[2] }));

function readExamples(marker: string): Example[] {
  const fences = fencesOf('README.md');
  const examples: Example[] = [];
  fences.forEach((fence, i) => {
    if (fence.lang === 'console') {
      examples.push(...consoleExamples(fence.body, marker));
      return;
    }
    const commands = fence.body.split('\n').filter((line) => line.startsWith(marker) || line.includes(`| ${marker}`));
    if (fence.lang !== 'sh' || commands.length === 0) return;
    const next = fences[i + 1];
    const example: Example = { commands, tls: commands.some((command) => command.includes(' -cacert ')) };
    if (next?.lang === 'json') example.expectJson = jsonSequence(next.body);
    if (next?.lang === 'text') example.expectText = next.body;
    if (next?.lang === '' && /^(ERROR:|kvctl:)/.test(next.body)) {
      example.expectError = next.body
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l !== '' && l !== 'ERROR:');
    }
    examples.push(example);
  });
  return examples;
}

/** The `$ MARKER...` commands of a ```console block that show their output, each with it. */
function consoleExamples(body: string, marker: string): Example[] {
  return body
    .split(/^\$ /m)
    .slice(1)
    .map((part) => {
      const [command, ...output] = part.replace(/\n$/, '').split('\n');
      return { commands: [command], expectConsole: output.join('\n'), tls: command.includes(' -cacert ') };
    })
    .filter((example) => example.commands[0].startsWith(marker) && example.expectConsole !== '');
}

/** Whether `stdout` (CRLF line ends, as curl -i prints headers, read as LF) is what a ```console block shows. */
function matchesConsole(stdout: string, expected: string): boolean {
  const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const pattern = expected
    .split('\n')
    .map((line) => (line === '...' ? '(?:[^\\n]*\\n)*?' : `${line.split('...').map(escape).join('[^\\n]*')}\\n`))
    .join('');
  const lines = stdout.replaceAll('\r\n', '\n');
  return new RegExp(`^${pattern}$`).test(lines.endsWith('\n') ? lines : `${lines}\n`);
}

/**
 * Splits a pasted command line into argv the way sh would for these simple
 * lines: 'single quotes' verbatim, "double quotes" with $NAME expanded from `env`.
 */
function shellWords(line: string, env: Record<string, string> = {}): string[] {
  return [...line.matchAll(/'([^']*)'|"([^"]*)"|(\S+)/g)].map(
    (m) => m[1] ?? m[2]?.replace(/\$(\w+)/g, (_, name: string) => env[name] ?? '') ?? m[3],
  );
}

/** Runs one grpcurl line from the README against `address`. */
function runGrpcurl(command: string, address: string, options: { cwd?: string; env?: Record<string, string> } = {}): Promise<Outcome> {
  const args = shellWords(command, options.env)
    .slice(1)
    .map((word) => (word === README_ADDRESS ? address : word));
  return promisify(execFile)(grpcurl!, args, { cwd: options.cwd }).then(
    ({ stdout }) => ({ ok: true as const, stdout }),
    (error: { stdout: string; stderr: string }) => ({ ok: false as const, stdout: error.stdout, stderr: error.stderr }),
  );
}

type Outcome = { ok: true; stdout: string } | { ok: false; stdout: string; stderr: string };

/** A watch's first message carries the store's history id, random per store: any 16 hex digits match the README's. */
function anyHistoryId(messages: unknown[]): unknown[] {
  return messages.map((message) => {
    if (typeof message !== 'object' || message === null || !('historyId' in message)) return message;
    const id = message.historyId;
    return { ...message, historyId: typeof id === 'string' && /^[0-9a-f]{16}$/.test(id) ? '<16 hex digits>' : id };
  });
}

async function checkExamples(examples: Example[], runLine: (command: string) => Promise<Outcome>): Promise<void> {
  for (const example of examples) {
    for (const [i, command] of example.commands.entries()) {
      const result = await runLine(command);
      const last = i === example.commands.length - 1;
      if (last && example.expectError) {
        expect(result.ok).toBe(false);
        for (const line of example.expectError) expect(result.ok ? '' : result.stderr).toContain(line);
        continue;
      }
      const streamEnded = !result.ok && command.includes(' -max-time ') && (result.stderr ?? '').includes('Code: DeadlineExceeded');
      if (!result.ok && !streamEnded) throw new Error(`README command failed: ${command}\n${result.stderr}`);
      if (last && example.expectJson !== undefined)
        expect(anyHistoryId(jsonSequence(result.stdout))).toEqual(anyHistoryId(example.expectJson));
      if (last && example.expectText !== undefined) expect(result.stdout).toBe(example.expectText);
      if (last && example.expectConsole !== undefined && !matchesConsole(result.stdout, example.expectConsole))
        expect(result.stdout.replaceAll('\r\n', '\n')).toBe(example.expectConsole);
    }
  }
}

const servers: RunningServer[] = [];
afterAll(async () => {
  await Promise.all(servers.map((server) => server.stop()));
});

testGrpcurl('every grpcurl command in the README works as shown, against a fresh server', async () => {
  const server = await startServer();
  servers.push(server);
  // The Clients section's `grpcurl -v` shows the revisions of a server of its own, not those this run has reached.
  const examples = readExamples('grpcurl ').filter((example) => !example.tls && example.expectConsole === undefined);
  expect(examples.length).toBeGreaterThanOrEqual(3);
  await checkExamples(examples, (command) => runGrpcurl(command, server.address));
});

testGrpcurl("every TLS grpcurl command in the README works as shown, with docs/security.md's certificates and auth file", async () => {
  const dir = makeTempDir('kv-readme-tls-');
  // docs/security.md promises CI runs its openssl lines: run them, as sh would, in a fresh directory.
  const securityDoc = fencesOf('docs/security.md');
  const opensslLines = securityDoc
    .filter((fence) => fence.lang === 'sh')
    .flatMap((fence) => fence.body.split('\n').filter((line) => line.startsWith('openssl ')));
  expect(opensslLines.length).toBeGreaterThanOrEqual(5);
  await promisify(execFile)('sh', ['-e', '-c', opensslLines.join('\n')], { cwd: dir });
  const authFile = path.join(dir, 'auth.yaml');
  writeFileSync(authFile, securityDoc.find((fence) => fence.lang === 'yaml')!.body);
  const created = await runServerToExit(['token', 'create', '--role', 'app-writer', '--name', 'readme', '--auth-file', authFile]);
  expect(created.code).toBe(0);

  const file = (name: string): string => path.join(dir, name);
  const server = await startServer({
    args: ['--tls-cert', file('server.crt'), '--tls-key', file('server.key'), '--tls-client-ca', file('ca.crt'), '--auth-file', authFile],
  });
  servers.push(server);
  const examples = readExamples('grpcurl ').filter((example) => example.tls);
  expect(examples.length).toBeGreaterThanOrEqual(2);
  await checkExamples(examples, (command) => runGrpcurl(command, server.address, { cwd: dir, env: { KV_TOKEN: created.stdout.trim() } }));
});

testWithJq(
  'every kvctl command in the README works as shown, against a fresh server',
  async () => {
    const server = await startServer();
    servers.push(server);
    const examples = readExamples('npx kvctl ');
    expect(examples.length).toBeGreaterThanOrEqual(5);
    // Files the examples write (a backup, a restored data directory) land in a directory of their own.
    const cwd = makeTempDir('kv-readme-kvctl-');
    // Pasted lines as sh runs them (pipes into jq included), kvctl as npm links it;
    // the README's default endpoint becomes this server through KV_ENDPOINTS.
    await checkExamples(examples, async (command) => {
      const line = command.replaceAll('npx kvctl', KVCTL_SHELL);
      const result = await runCommand('sh', ['-c', line], { env: { KV_ENDPOINTS: server.address }, cwd });
      return result.code === 0 ? { ok: true, stdout: result.stdout } : { ok: false, stdout: result.stdout, stderr: result.stderr };
    });
  },
  240_000,
); // some 30 kvctl processes, each a cold start of node

testWithCurl('every curl command in the README works as shown, against a fresh server with an HTTP port', async () => {
  const server = await startServer({ args: ['--http-listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0'] });
  servers.push(server);
  const metricsAddress = server.metricsAddress;
  expect(metricsAddress).toBeDefined();
  const examples = readExamples('curl ');
  expect(examples.length).toBeGreaterThanOrEqual(6);
  expect(examples.filter((example) => example.expectConsole !== undefined).length).toBeGreaterThanOrEqual(1);
  // Pasted lines as sh runs them; the README's HTTP and metrics addresses become this server's.
  await checkExamples(examples, async (command) => {
    const line = command.replaceAll(README_HTTP_ADDRESS, server.httpAddress!).replaceAll(README_METRICS_ADDRESS, metricsAddress!);
    const result = await runCommand('sh', ['-c', line]);
    return result.code === 0 ? { ok: true, stdout: result.stdout } : { ok: false, stdout: result.stdout, stderr: result.stderr };
  });
});

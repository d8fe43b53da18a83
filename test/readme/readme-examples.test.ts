import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { KVCTL_SHELL, runCommand } from '../support/kvctl-process';
import { REPO_ROOT, startServer, type RunningServer } from '../support/server-process';
import { testWithTool } from '../support/find-tool';

/**
 * The README is a promise: every grpcurl command and every kvctl command in
 * its ```sh blocks is run here, in order, each tool against its own fresh
 * server. A ```json block right after a sh block is the output of that
 * block's last command (for a stream, the messages one after the other); a
 * ```text block is its exact stdout; a block starting with "ERROR:"
 * (grpcurl) or "kvctl:" is the error it must fail with. A grpcurl command
 * with -max-time (a Watch stream) ends with DeadlineExceeded by design.
 */
const README_ADDRESS = '127.0.0.1:50051';
const { tool: grpcurl, test: testGrpcurl } = testWithTool('grpcurl');
const { test: testWithJq } = testWithTool('jq');

interface Example {
  commands: string[];
  expectJson?: unknown[];
  expectText?: string;
  expectError?: string[];
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
function readExamples(marker: string): Example[] {
  const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const fences = [...readme.matchAll(/```(\w*)\n([\s\S]*?)```/g)].map((m) => ({ lang: m[1], body: m[2] }));
  const examples: Example[] = [];
  fences.forEach((fence, i) => {
    const commands = fence.body.split('\n').filter((line) => line.startsWith(marker) || line.includes(`| ${marker}`));
    if (fence.lang !== 'sh' || commands.length === 0) return;
    const next = fences[i + 1];
    const example: Example = { commands };
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

/** Splits a pasted command line into argv the way sh would for these simple, single-quoted lines. */
function shellWords(line: string): string[] {
  return [...line.matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]);
}

type Outcome = { ok: true; stdout: string } | { ok: false; stdout: string; stderr: string };

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
      if (last && example.expectJson !== undefined) expect(jsonSequence(result.stdout)).toEqual(example.expectJson);
      if (last && example.expectText !== undefined) expect(result.stdout).toBe(example.expectText);
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
  const examples = readExamples('grpcurl ');
  expect(examples.length).toBeGreaterThanOrEqual(3);
  await checkExamples(examples, (command) => {
    const args = shellWords(command)
      .slice(1)
      .map((word) => (word === README_ADDRESS ? server.address : word));
    return promisify(execFile)(grpcurl!, args).then(
      ({ stdout }) => ({ ok: true as const, stdout }),
      (error: { stdout: string; stderr: string }) => ({ ok: false as const, stdout: error.stdout, stderr: error.stderr }),
    );
  });
});

testWithJq('every kvctl command in the README works as shown, against a fresh server', async () => {
  const server = await startServer();
  servers.push(server);
  const examples = readExamples('npx kvctl ');
  expect(examples.length).toBeGreaterThanOrEqual(5);
  // Pasted lines as sh runs them (pipes into jq included), kvctl from its sources;
  // the README's default endpoint becomes this server through KV_ENDPOINTS.
  await checkExamples(examples, async (command) => {
    const line = command.replaceAll('npx kvctl', KVCTL_SHELL);
    const result = await runCommand('sh', ['-c', line], { env: { KV_ENDPOINTS: server.address } });
    return result.code === 0 ? { ok: true, stdout: result.stdout } : { ok: false, stdout: result.stdout, stderr: result.stderr };
  });
});

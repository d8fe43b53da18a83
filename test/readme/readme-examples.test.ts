import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT, startServer, type RunningServer } from '../support/server-process';
import { testWithTool } from '../support/find-tool';

/**
 * The README is a promise: every grpcurl command in its ```sh blocks is run
 * here, in order, against a fresh server. A ```json block right after a sh
 * block is the output of that block's last command (for a stream, the
 * messages one after the other); a block starting with "ERROR:" is the error
 * it must fail with. A command with -max-time (a Watch stream) ends with
 * DeadlineExceeded by design.
 */
const README_ADDRESS = '127.0.0.1:50051';
const { tool: grpcurl, test: testGrpcurl } = testWithTool('grpcurl');

interface Example {
  commands: string[];
  expectJson?: unknown[];
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

function readExamples(): Example[] {
  const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const fences = [...readme.matchAll(/```(\w*)\n([\s\S]*?)```/g)].map((m) => ({ lang: m[1], body: m[2] }));
  const examples: Example[] = [];
  fences.forEach((fence, i) => {
    const commands = fence.body.split('\n').filter((line) => line.startsWith('grpcurl '));
    if (fence.lang !== 'sh' || commands.length === 0) return;
    const next = fences[i + 1];
    const example: Example = { commands };
    if (next?.lang === 'json') example.expectJson = jsonSequence(next.body);
    if (next?.lang === '' && next.body.startsWith('ERROR:')) {
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

let server: RunningServer | undefined;
afterAll(async () => {
  await server?.stop();
});

testGrpcurl('every grpcurl command in the README works as shown, against a fresh server', async () => {
  server = await startServer();
  const examples = readExamples();
  expect(examples.length).toBeGreaterThanOrEqual(3);
  for (const example of examples) {
    for (const [i, command] of example.commands.entries()) {
      const args = shellWords(command)
        .slice(1)
        .map((word) => (word === README_ADDRESS ? server!.address : word));
      const last = i === example.commands.length - 1;
      const result = await promisify(execFile)(grpcurl!, args).then(
        ({ stdout }) => ({ ok: true as const, stdout }),
        (error: { stdout: string; stderr: string }) => ({ ok: false as const, stdout: error.stdout, stderr: error.stderr }),
      );
      if (last && example.expectError) {
        expect(result.ok).toBe(false);
        for (const line of example.expectError) expect(result.ok ? '' : result.stderr).toContain(line);
        continue;
      }
      const streamEnded = !result.ok && args.includes('-max-time') && result.stderr.includes('Code: DeadlineExceeded');
      if (!result.ok && !streamEnded) throw new Error(`README command failed: ${command}\n${result.stderr}`);
      if (last && example.expectJson !== undefined) expect(jsonSequence(result.stdout)).toEqual(example.expectJson);
    }
  }
});

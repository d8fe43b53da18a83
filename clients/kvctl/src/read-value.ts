import { readFile } from 'node:fs/promises';
import type { JsonValue } from '@kv/client';
import { CliError } from './cli-error';

/**
 * The JSON value a user gave to set: the argument itself, `@FILE`, or stdin
 * when the argument is `-` or missing. Never guessed: text that is not JSON
 * is a usage error, not a string.
 */
export async function readValue(argument: string | undefined, stdin: NodeJS.ReadableStream): Promise<JsonValue> {
  let text: string;
  let source: string;
  if (argument === undefined || argument === '-') {
    text = await readAll(stdin);
    source = 'stdin';
  } else if (argument.startsWith('@')) {
    const file = argument.slice(1);
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      throw new CliError(`cannot read ${file}: ${(error as Error).message}`);
    }
    source = file;
  } else {
    text = argument;
    source = 'the value';
  }
  try {
    return JSON.parse(text) as JsonValue;
  } catch (error) {
    const hint = source === 'the value' ? ` (a string needs JSON quotes: '"text"')` : '';
    throw new CliError(`${source} is not JSON: ${(error as Error).message}${hint}`);
  }
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString('utf8');
}

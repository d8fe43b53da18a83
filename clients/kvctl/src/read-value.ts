import { readFile } from 'node:fs/promises';
import type { JsonValue } from '@kv/client';
import { CliError } from './cli-error';
import { decodeUtf8, parseStrictJson } from './strict-text';

/**
 * The JSON value a user gave to set: the argument itself, `@FILE`, or stdin
 * when the argument is `-` or missing. Never guessed: text that is not JSON
 * is a usage error, not a string; nor changed: bytes that are not UTF-8, an
 * object key given twice or an unpaired surrogate escape are usage errors too.
 */
export async function readValue(argument: string | undefined, stdin: NodeJS.ReadableStream): Promise<JsonValue> {
  let text: string;
  let source: string;
  if (argument === undefined || argument === '-') {
    source = 'stdin';
    text = decodeUtf8(await readAll(stdin), source);
  } else if (argument.startsWith('@')) {
    const file = argument.slice(1);
    let bytes: Buffer;
    try {
      bytes = await readFile(file);
    } catch (error) {
      throw new CliError(`cannot read ${file}: ${(error as Error).message}`);
    }
    source = file;
    text = decodeUtf8(bytes, source);
  } else {
    text = argument;
    source = 'the value';
  }
  return parseStrictJson(text, source, (error) => {
    const hint = source === 'the value' ? ` (a string needs JSON quotes: '"text"')` : '';
    return `${source} is not JSON: ${error.message}${hint}`;
  }) as JsonValue;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks);
}

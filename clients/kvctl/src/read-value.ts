import { createReadStream } from 'node:fs';
import type { JsonValue } from '@kv/client';
import { CliError } from './cli-error';
import { decodeUtf8, parseStrictJson } from './strict-text';

/**
 * The JSON value a user gave to set: the argument itself, `@FILE`, or stdin
 * when the argument is `-` or missing. Never guessed: text that is not JSON
 * is a usage error, not a string; nor changed: bytes that are not UTF-8, an
 * object key given twice or an unpaired surrogate escape are usage errors too.
 */
export async function readValue(
  argument: string | undefined,
  stdin: NodeJS.ReadableStream,
  what: 'value' | 'patch' = 'value',
): Promise<JsonValue> {
  let text: string;
  let source: string;
  if (argument === undefined || argument === '-') {
    source = 'stdin';
    text = decodeUtf8(await readBounded(stdin, source), source);
  } else if (argument.startsWith('@')) {
    const file = argument.slice(1);
    if (file === '') throw new CliError(`@ must be followed by the name of the file holding the ${what} (@${what}.json)`);
    let bytes: Buffer;
    const stream = createReadStream(file);
    try {
      bytes = await readBounded(stream, file);
    } catch (error) {
      if (error instanceof CliError) throw error;
      throw new CliError(`cannot read ${file}: ${(error as Error).message}`);
    } finally {
      stream.destroy();
    }
    source = file;
    text = decodeUtf8(bytes, source);
  } else {
    text = argument;
    source = `the ${what}`;
  }
  // Empty is no value at all (stdin closed at once: `< /dev/null`, or the key given and the value forgotten), not a JSON syntax error.
  if (text.trim() === '') {
    throw new CliError(
      `${source === 'stdin' ? `no ${what}: stdin was empty` : `${source} is empty`}; give the ${what} as JSON: an argument ('{"a":1}', '"text"'), @FILE, or stdin`,
    );
  }
  return parseStrictJson(text, source, (error) => {
    const hint = source === `the ${what}` ? ` (a string needs JSON quotes: '"text"')` : '';
    return `${source} is not JSON: ${error.message}${hint}`;
  }) as JsonValue;
}

/** The most kvctl reads of a value: a server takes no request larger than 16 MiB (its default request limit). */
export const MAX_VALUE_INPUT_BYTES = 16 * 1024 * 1024;

/** All of a stream, unless it goes past MAX_VALUE_INPUT_BYTES (/dev/zero, a wrong file): then a usage error, read no further. */
async function readBounded(stream: NodeJS.ReadableStream, source: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    size += bytes.length;
    if (size > MAX_VALUE_INPUT_BYTES) {
      throw new CliError(
        `${source} is larger than ${MAX_VALUE_INPUT_BYTES / 1024 / 1024} MiB, more than a server takes in one request; nothing was sent`,
      );
    }
    chunks.push(bytes);
  }
  return Buffer.concat(chunks);
}

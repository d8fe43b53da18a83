/**
 * What kvctl refuses rather than change silently. JSON.parse keeps the last
 * of an object key given twice, keeps an unpaired surrogate escape
 * ("\ud800") that UTF-8 cannot carry (the encoder would send U+FFFD), and
 * rounds a number to the nearest 64-bit float (a google.protobuf.Value
 * number is one: 12345678901234567890 would be stored as
 * 12345678901234567000); a lenient UTF-8 decoder turns bytes that are not
 * UTF-8 into U+FFFD. Each is a usage error instead, named in one line.
 */
import { numberProblem, numberTokenAt } from '@kv/client/wire';
import { CliError } from './cli-error';

/**
 * Why a JSON text that JSON.parse accepted would not be stored as written
 * ("has the object key "a" twice"), or undefined if it would. The text must
 * already be valid JSON: only its strings and structure are looked at.
 */
export function jsonTextProblem(text: string): string | undefined {
  // The keys seen so far in each open object (undefined for an array).
  const open: (Set<string> | undefined)[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '{') {
      open.push(new Set());
      expectKey = true;
    } else if (c === '[') {
      open.push(undefined);
    } else if (c === '}' || c === ']') {
      open.pop();
    } else if (c === ',') {
      expectKey = open[open.length - 1] !== undefined;
    } else if (c === '-' || (c >= '0' && c <= '9')) {
      const token = numberTokenAt(text, i) as string;
      const problem = numberProblem(token);
      if (problem !== undefined) return problem;
      i += token.length - 1;
    } else if (c === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      const string = JSON.parse(text.slice(i, end + 1)) as string;
      const lone = unpairedSurrogate(string);
      if (lone !== undefined) return `has an unpaired surrogate ${lone} in a string (UTF-8 cannot carry it)`;
      if (expectKey) {
        const keys = open[open.length - 1] as Set<string>;
        if (keys.has(string)) return `has the object key ${JSON.stringify(string)} twice (only one value per key is kept)`;
        keys.add(string);
        expectKey = false;
      }
      i = end;
    }
  }
  return undefined;
}

/** JSON.parse of text a user gave, refusing what would not be stored as written; `where` starts each message. */
export function parseStrictJson(text: string, where: string, notJson: (error: Error) => string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new CliError(notJson(error as Error));
  }
  const problem = jsonTextProblem(text);
  if (problem !== undefined) throw new CliError(`${where} ${problem}`);
  return value;
}

/** The first unpaired surrogate in text, as an escape ("\ud800"), or undefined if the text is well formed. */
export function unpairedSurrogate(text: string): string | undefined {
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0xd800 || unit > 0xdfff) continue;
    const next = text.charCodeAt(i + 1);
    if (unit <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) i++;
    else return `\\u${unit.toString(16)}`;
  }
  return undefined;
}

/** Bytes as UTF-8 text; bytes that are not UTF-8 are a usage error naming `source` and the first bad byte. */
export function decodeUtf8(bytes: Uint8Array, source: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const at = firstInvalidUtf8Byte(bytes) ?? 0;
    throw new CliError(`${source} is not valid UTF-8 (byte 0x${hex(bytes[at])} at offset ${at})`);
  }
}

/** The offset of the first byte that does not start a well-formed UTF-8 sequence, or undefined if they all do. */
export function firstInvalidUtf8Byte(bytes: Uint8Array): number | undefined {
  for (let i = 0; i < bytes.length;) {
    const length = utf8SequenceLength(bytes, i);
    if (length === 0) return i;
    i += length;
  }
  return undefined;
}

/** Bytes as text for a message: valid UTF-8 as it is, each byte of anything else as \xNN. */
export function showBytes(bytes: Uint8Array): string {
  let shown = '';
  let from = 0;
  for (let i = 0; i < bytes.length;) {
    const length = utf8SequenceLength(bytes, i);
    if (length > 0) {
      i += length;
      continue;
    }
    shown += `${Buffer.from(bytes.subarray(from, i)).toString('utf8')}\\x${hex(bytes[i])}`;
    from = ++i;
  }
  return shown + Buffer.from(bytes.subarray(from)).toString('utf8');
}

/** The length of the well-formed UTF-8 sequence at bytes[i], or 0 if there is none there. */
function utf8SequenceLength(bytes: Uint8Array, i: number): number {
  const lead = bytes[i];
  if (lead < 0x80) return 1;
  const continuations = lead >= 0xf8 ? -1 : lead >= 0xf0 ? 3 : lead >= 0xe0 ? 2 : lead >= 0xc0 ? 1 : -1;
  if (continuations < 0) return 0;
  let codePoint = lead & (0x3f >> continuations);
  for (let k = 1; k <= continuations; k++) {
    const next = bytes[i + k] as number | undefined;
    if (next === undefined || (next & 0xc0) !== 0x80) return 0;
    codePoint = (codePoint << 6) | (next & 0x3f);
  }
  const shortest = [0, 0x80, 0x800, 0x10000][continuations];
  if (codePoint < shortest || codePoint > 0x10ffff || (codePoint >= 0xd800 && codePoint <= 0xdfff)) return 0;
  return continuations + 1;
}

export function hex(byte: number): string {
  return byte.toString(16).padStart(2, '0');
}

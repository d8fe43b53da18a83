/**
 * The console's connection to kv: a Connect client for kv.v1 on the page's
 * own origin (JSON, so the browser's network panel is readable), the token
 * when auth is on, and the few conversions between JSON text and
 * google.protobuf.Value that the screens need.
 */
import { Code, ConnectError, createClient, type Client, type Interceptor } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-web';
import { fromJsonString, toJson, toJsonString, type JsonValue } from '@bufbuild/protobuf';
import { ValueSchema, type Value } from '@bufbuild/protobuf/wkt';
import { roundedNumberIn, stringEnd } from '../../clients/typescript/src/wire/json-numbers';
import { KeyValueService } from './gen/kv/v1/kv_pb';

export type KvClient = Client<typeof KeyValueService>;

const TOKEN_KEY = 'kv-console-token';

/** The token lives for this tab only (sessionStorage), never in a cookie. */
export function savedToken(): string {
  return sessionStorage.getItem(TOKEN_KEY) ?? '';
}

export function saveToken(token: string): void {
  if (token === '') sessionStorage.removeItem(TOKEN_KEY);
  else sessionStorage.setItem(TOKEN_KEY, token);
}

/**
 * Why a pasted token cannot be one, if it cannot: a token is visible ASCII
 * (kv-server's are "kv_" and base64url), which is all an HTTP header and
 * the server's "Bearer <token>" take.
 */
export function tokenProblem(token: string): string | undefined {
  if (/^[\x21-\x7e]+$/.test(token)) return undefined;
  return 'That token contains characters a token cannot have (spaces, control or non-ASCII characters): check what was pasted.';
}

export function createKvClient(token: () => string): KvClient {
  const bearer: Interceptor = (next) => (request) => {
    const current = token();
    if (current !== '') request.header.set('authorization', `Bearer ${current}`);
    return next(request);
  };
  return createClient(KeyValueService, createConnectTransport({ baseUrl: window.location.origin, interceptors: [bearer] }));
}

/**
 * Parses what a person typed. protobuf-es's parser refuses duplicate object
 * keys (JSON.parse would silently keep the last) and keeps a "__proto__"
 * field as a field; a number a 64-bit float would round is refused too, so
 * what is saved is exactly what was typed.
 */
export function parseValue(text: string): { value: Value } | { error: string } {
  if (text.trim() === '') return { error: 'Not valid JSON: enter a JSON value (null, a number, "a string", [..] or {..}).' };
  let value: Value;
  try {
    value = fromJsonString(ValueSchema, text);
  } catch (error) {
    // protobuf-es words it "cannot decode message google.protobuf.Value from JSON: ..." (older versions without "message").
    const why =
      error instanceof Error ? error.message.replace(/^cannot decode (?:message )?google\.protobuf\.Value from JSON: /, '') : String(error);
    return { error: `Not valid JSON: ${why}` };
  }
  const rounded = roundedNumberIn(text);
  if (rounded !== undefined) return { error: `Cannot be saved as typed: the value ${rounded}.` };
  const unpaired = illFormedStringIn(toJson(ValueSchema, value));
  if (unpaired !== undefined) {
    return {
      error: `Cannot be saved: ${unpaired} has a lone surrogate (half of a UTF-16 pair, such as \\ud800), which the server refuses.`,
    };
  }
  return { value };
}

/** Where a string or object key is not well-formed UTF-16 (a lone surrogate), which cannot be sent as UTF-8. */
function illFormedStringIn(value: JsonValue, at = 'the value'): string | undefined {
  if (typeof value === 'string') return value.isWellFormed() ? undefined : `the string at ${at}`;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = illFormedStringIn(value[i], `${at}[${i}]`);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  if (value !== null && typeof value === 'object') {
    for (const [name, inner] of Object.entries(value)) {
      if (!name.isWellFormed()) return `an object key in ${at}`;
      const found = illFormedStringIn(inner, `${at}.${name}`);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

/**
 * The characters of a key a person cannot see as themselves: controls (a
 * tab or newline splits a line), bidi controls (U+202E shows "gnp.exe" as
 * "exe.png"), zero-width and other invisible format characters (U+200B
 * makes "zw\u200bsp" look like "zwsp"), line and paragraph separators,
 * spaces other than U+0020, and lone surrogates. Inside an emoji sequence
 * (emojiJoiners) a joiner, variation selector or tag is part of what is
 * seen, and is left as it is.
 */
const HIDDEN = /[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}]|(?! )\p{Zs}/u;

/** What an emoji's presentation selector (U+FE0F, U+FE0E) may follow: a pictograph, a flag letter, a skin tone. */
const EMOJI_BASE = /[\p{Extended_Pictographic}\p{Emoji_Presentation}]/u;
const PICTOGRAPH = /\p{Extended_Pictographic}/u;
const ZWJ = '\u200d';
const KEYCAP = '\u20e3';
const BLACK_FLAG = '\u{1f3f4}';
const CANCEL_TAG = '\u{e007f}';

/**
 * The indexes (into `chars`) of the joiners, variation selectors and tags
 * that belong to an emoji sequence, so "❤️" or "👨‍👩‍👧" is shown as itself:
 * U+FE0F/FE0E after a pictograph (or a digit, # or * before a keycap
 * U+20E3), U+200D between a pictograph (or its selector or skin tone) and
 * another pictograph, and the tags of a subdivision flag (🏴 then tags
 * ending in U+E007F). Elsewhere (a U+200D between letters, a U+FE0F after
 * a letter) they are hidden characters like any other.
 */
function emojiJoiners(chars: string[]): Set<number> {
  const kept = new Set<number>();
  chars.forEach((char, i) => {
    const before = chars[i - 1] ?? '';
    const after = chars[i + 1] ?? '';
    if (char === '\ufe0f' || char === '\ufe0e') {
      if (EMOJI_BASE.test(before) || (/^[0-9#*]$/.test(before) && after === KEYCAP)) kept.add(i);
    } else if (char === ZWJ) {
      const joined = PICTOGRAPH.test(before) || /\p{Emoji_Modifier}/u.test(before) || kept.has(i - 1);
      if (joined && PICTOGRAPH.test(after)) kept.add(i);
    } else if (char === BLACK_FLAG) {
      let end = i + 1;
      while (end < chars.length && /[\u{e0020}-\u{e007e}]/u.test(chars[end])) end++;
      if (end > i + 1 && chars[end] === CANCEL_TAG) for (let tag = i + 1; tag <= end; tag++) kept.add(tag);
    }
  });
  return kept;
}

const SHORT_ESCAPES: Record<string, string> = { '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** A hidden character as JSON writes one: \n, \t..., else \u202e (two of them for a character past U+FFFF). */
function escapeOf(char: string): string {
  const short = SHORT_ESCAPES[char];
  if (short !== undefined) return short;
  let escaped = '';
  for (let i = 0; i < char.length; i++) escaped += `\\u${char.charCodeAt(i).toString(16).padStart(4, '0')}`;
  return escaped;
}

/** A key's characters, each with whether it is hidden (shown as its escape). */
function keyChars(key: string): { char: string; hidden: boolean }[] {
  const chars = [...key];
  const kept = emojiJoiners(chars);
  return chars.map((char, i) => ({ char, hidden: !kept.has(i) && HIDDEN.test(char) }));
}

/**
 * A key as it is shown, in runs of text and of escapes (which KeyText marks
 * as such). One rule, for the page and for accessible names (shownKey): a
 * key with a hidden character, or one that starts with a quote, is written
 * as a JSON string (quoted; a backslash is \\, a quote \", each hidden
 * character its escape), so that a key with U+200B never reads as one with
 * the text \u200b; in running text (`inText`) so is a key whose spaces at
 * either end (or emptiness) would otherwise be invisible; any other key is
 * shown as it is.
 */
export function keyParts(key: string, inText: boolean): { text: string; escaped: boolean }[] {
  const chars = keyChars(key);
  const quoted = chars.some(({ hidden }) => hidden) || key.startsWith('"') || (inText && needsQuotes(key));
  if (!quoted) return [{ text: key, escaped: false }];
  const parts: { text: string; escaped: boolean }[] = [{ text: '"', escaped: false }];
  for (const { char, hidden } of chars) {
    const text = hidden ? escapeOf(char) : char === '"' || char === '\\' ? `\\${char}` : char;
    const last = parts[parts.length - 1];
    if (last.escaped === hidden) last.text += text;
    else parts.push({ text, escaped: hidden });
  }
  const last = parts[parts.length - 1];
  if (last.escaped) parts.push({ text: '"', escaped: false });
  else last.text += '"';
  return parts;
}

/** Whether a key shown in running text needs quotes: spaces at either end (or nothing at all) would otherwise be invisible. */
function needsQuotes(key: string): boolean {
  return key === '' || key.trim() !== key;
}

/** A key as plain text, as keyParts writes it in running text: for accessible names (KeyText's, a folder's, a list's). */
export function shownKey(key: string): string {
  return keyParts(key, true)
    .map(({ text }) => text)
    .join('');
}

/** The seconds to wait from a failure's grpc-retry-pushback-ms trailer, if any. */
export function retryAfterSeconds(error: unknown): number | undefined {
  const ms = error instanceof ConnectError ? error.metadata.get('grpc-retry-pushback-ms') : null;
  return ms === null || ms === undefined || !/^\d+$/.test(ms) ? undefined : Math.max(1, Math.ceil(Number(ms) / 1000));
}

/** Whether a failure may pass by itself (the server restarting, the network): worth retrying. */
export function isTransient(error: unknown): boolean {
  if (!(error instanceof ConnectError)) return true;
  return [Code.Unavailable, Code.Unknown, Code.Internal, Code.DeadlineExceeded, Code.Aborted, Code.Canceled].includes(error.code);
}

/** A value as indented JSON text, its hidden characters escaped (showJson). */
export function formatValue(value: Value | undefined): string {
  if (value === undefined) return '';
  return showJson(JSON.stringify(toJson(ValueSchema, value), null, 2));
}

/** A value on one line, for lists, its hidden characters escaped (showJson). */
export function compactValue(value: Value | undefined): string {
  return value === undefined ? '' : showJson(toJsonString(ValueSchema, value));
}

/** How much of a value a list shows (the live view, History): a whole 1 MiB value made its row hundreds of windows tall. */
export const LISTED_VALUE_CHARS = 1000;

/** A value as a list shows it: its text, and its whole length (in UTF-16 units, as `text`) when `text` is cut. */
export interface Listed {
  text: string;
  length?: number;
}

/** A value on one line for a list: its first LISTED_VALUE_CHARS characters, and its whole length when that is more. */
export function listedValue(value: Value | undefined): Listed {
  const text = compactValue(value);
  if (text.length <= LISTED_VALUE_CHARS) return { text };
  // Not between the two halves of a character past U+FFFF.
  const end = /[\ud800-\udbff]/.test(text[LISTED_VALUE_CHARS - 1]) ? LISTED_VALUE_CHARS - 1 : LISTED_VALUE_CHARS;
  return { text: text.slice(0, end), length: text.length };
}

/** HIDDEN but for a newline, which JSON text has outside its strings only (as indentation); inside them it is \n. */
const HIDDEN_IN_JSON = /(?!\n)[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}]|(?! )\p{Zs}/u;

/**
 * JSON text as it is shown and edited: in its strings and object keys, each
 * character a person cannot see as itself (as for keys: a bidi control, a
 * zero-width character, a C1 control...) is written as its JSON escape, so
 * "\u202e0001" does not read as "1000", nor "a\u200bb" as "ab". The
 * escapes are JSON's own: the text parses to the same value, and saving it
 * unchanged saves what was there. JSON.stringify leaves these as they are
 * (it escapes only quotes, backslashes, controls below U+0020 and lone
 * surrogates). Outside its strings JSON text has only ASCII punctuation,
 * digits, letters, spaces and newlines.
 */
export function showJson(json: string): string {
  if (!HIDDEN_IN_JSON.test(json)) return json;
  let shown = '';
  let at = 0;
  for (let open = json.indexOf('"'); open !== -1; open = json.indexOf('"', at)) {
    const close = stringEnd(json, open);
    if (close === -1) break;
    const inside = json.slice(open + 1, close);
    shown += json.slice(at, open + 1) + (HIDDEN_IN_JSON.test(inside) ? escapeHidden(inside) : inside) + '"';
    at = close + 1;
  }
  return shown + json.slice(at);
}

/** Text with each hidden character as its escape (an emoji's own joiners and selectors left as they are). */
function escapeHidden(text: string): string {
  return keyChars(text)
    .map(({ char, hidden }) => (hidden ? escapeOf(char) : char))
    .join('');
}

export function valueAsJson(value: Value | undefined): JsonValue | undefined {
  return value === undefined ? undefined : toJson(ValueSchema, value);
}

/** The kv-reason of a failed call (REVISION_MISMATCH, NOT_FOUND, ...), if the server sent one. */
export function reasonOf(error: unknown): string | undefined {
  return error instanceof ConnectError ? (error.metadata.get('kv-reason') ?? undefined) : undefined;
}

export function isUnauthenticated(error: unknown): boolean {
  return error instanceof ConnectError && error.code === Code.Unauthenticated;
}

/** One line a person can act on. */
export function describeFailure(error: unknown): string {
  if (error instanceof ConnectError) {
    // The request got no answer at all (the server down or restarting, the network): the browser's own words
    // ("Failed to fetch", "NetworkError when attempting to fetch resource.") do not say so.
    if (error.cause instanceof TypeError) return `the server could not be reached (${error.rawMessage})`;
    return error.rawMessage || Code[error.code];
  }
  return error instanceof Error ? error.message : String(error);
}

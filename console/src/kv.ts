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
import { roundedNumberIn } from '../../clients/typescript/src/wire/json-numbers';
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
    const why = error instanceof Error ? error.message.replace(/^cannot decode google\.protobuf\.Value from JSON: /, '') : String(error);
    return { error: `Not valid JSON: ${why}` };
  }
  const rounded = roundedNumberIn(text);
  if (rounded !== undefined) return { error: `Cannot be saved as typed: the value ${rounded}.` };
  return { value };
}

/** A value as indented JSON text. */
export function formatValue(value: Value | undefined): string {
  if (value === undefined) return '';
  return JSON.stringify(toJson(ValueSchema, value), null, 2);
}

/** A value on one line, for lists. */
export function compactValue(value: Value | undefined): string {
  return value === undefined ? '' : toJsonString(ValueSchema, value);
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
  if (error instanceof ConnectError) return error.rawMessage || Code[error.code];
  return error instanceof Error ? error.message : String(error);
}

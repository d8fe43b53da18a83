import { createRequire } from 'node:module';
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import { MalformedValueError } from '@kv/client/wire';
import { InvalidArgumentError } from './service-errors';

// Read once: on the CommonJS build of @bufbuild/protobuf each access of an export is a getter call.
const Reader = BinaryReader;
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const decodeStrictUtf8 = (bytes: Uint8Array): string => strictUtf8.decode(bytes);

/**
 * A request decoder that never throws.
 *
 * grpc-js answers a throwing decoder with INTERNAL, but a request that does
 * not decode is the caller's mistake: a string that is not UTF-8 (which the
 * default decoder would silently turn into U+FFFD — changing what the user
 * sent), an int64 beyond 2^53 (forceLong=number), JSON nested deeper than
 * clients can decode. The decoder returns an InvalidArgumentError in place
 * of the request; the adapters in grpc-call.ts answer it with
 * INVALID_ARGUMENT.
 */
export function strictDecoder<T>(
  codec: { decode(reader: BinaryReader): T },
  /** The message's name in kv.v1 ("DeleteRequest"), so that an int64 out of range is named. */
  typeName?: string,
): (bytes: Buffer) => T | InvalidArgumentError {
  return (bytes) => {
    const reader = new Reader(bytes, decodeStrictUtf8);
    try {
      return codec.decode(reader);
    } catch (error) {
      if (error instanceof InvalidArgumentError)
        return new InvalidArgumentError(`request could not be decoded: ${error.message}`, error.reason);
      if (error instanceof MalformedValueError)
        return new InvalidArgumentError(`request could not be decoded: ${error.message}`, 'INVALID_VALUE');
      return new InvalidArgumentError(`request could not be decoded: ${decodeFailure(error, bytes, reader.pos, typeName)}`);
    }
  };
}

function decodeFailure(error: unknown, bytes: Buffer, failedAt: number, typeName: string | undefined): string {
  // Node's fatal TextDecoder says which error this is by code; anything else (an int64
  // past 2^53 under forceLong=number, the decoder's recursion limit) is passed on as the decoder words it.
  if ((error as NodeJS.ErrnoException).code === 'ERR_ENCODING_INVALID_ENCODED_DATA') return 'a string field is not valid UTF-8';
  // ts-proto's words for an int64 past what a JS number holds exactly (it does not say which field).
  const message = error instanceof Error ? error.message : String(error);
  if (message === 'Value is larger than Number.MAX_SAFE_INTEGER' || message === 'Value is smaller than Number.MIN_SAFE_INTEGER') {
    const field = typeName === undefined ? undefined : int64FieldEndingAt(bytes, failedAt, typeName);
    // The same words as the hand-written decoders' (wire/decode-requests.ts).
    if (field !== undefined) return `${field.name} ${field.value} is outside ±(2^53 - 1)`;
    return `an integer field is outside ±(2^53 - 1), the most kv takes (a revision, a lease id, ttl_ms) (${message})`;
  }
  return message;
}

/** The top-level varint field whose value ends at `end` (where the decoder stopped), with its name and value as sent. */
function int64FieldEndingAt(bytes: Buffer, end: number, typeName: string): { name: string; value: string } | undefined {
  try {
    const reader = new Reader(bytes);
    while (reader.pos < end) {
      const [number, wireType] = reader.tag();
      const start = reader.pos;
      // Skipped, not read: an unknown varint the decoder skipped may be longer than an int64.
      reader.skip(wireType);
      if (wireType !== WireType.Varint || reader.pos !== end) continue;
      const name = fieldName(typeName, number);
      if (name === undefined) return undefined;
      reader.pos = start;
      return { name, value: String(reader.int64()) };
    }
  } catch {
    // Not walkable at the top level: the failure was deeper; the caller says it without the field.
  }
  return undefined;
}

/**
 * The contract's name of field `number` of request message `typeName`
 * ("DeleteRequest"), from the protobuf-es schemas generated for the HTTP
 * port: loaded on the first such error (about 0.1 s), not at start-up.
 */
function fieldName(typeName: string, number: number): string | undefined {
  const load = createRequire(__filename);
  const schemas = load('../gen/kv/v1/kv_pb') as Record<string, { fields?: ReadonlyArray<{ number: number; name: string }> } | undefined>;
  return schemas[`${typeName}Schema`]?.fields?.find((field) => field.number === number)?.name;
}

/**
 * Whether an answer fits in JSON. connect-node serializes each message of a
 * JSON call (application/json, connect+json, grpc-web+json) as one
 * JavaScript string, and V8 makes no string longer than about 2^29 UTF-16
 * units (512 Mi): past that, JSON.stringify throws "Invalid string length",
 * which connect-node would answer as INTERNAL. A List page of 600 values of
 * 1 MiB, or a Watch revision clearing them with their previous entries,
 * fits in protobuf (the gRPC port, application/proto) but not in JSON.
 */
import { constants } from 'node:buffer';
import { type DescMessage, type MessageShape, toJsonString } from '@bufbuild/protobuf';

/** The longest string V8 makes, in UTF-16 units: the most JSON text one message can be. */
export const MAX_JSON_CHARS = constants.MAX_STRING_LENGTH;

/**
 * JSON characters per protobuf byte, at most, for any kv.v1 message. The
 * worst field is an enum ("type":"EVENT_TYPE_DELETE", 27 characters, from
 * 2 bytes: 13.5) or an int64 of 1 under the longest field name
 * ("createRevision":"1", 21 from 2); a string's control character is 1
 * byte and 6 characters (\u0001); a number is 9 bytes and at most 24
 * characters. Messages only add braces and commas to what their fields
 * already count: 16 is a bound, plus the outermost {}.
 */
export const JSON_CHARS_PER_BYTE = 16;
const OUTER_CHARS = 64;

/** An answer this long as protobuf, or shorter, fits in JSON whatever it holds (about 32 MiB). */
export const ALWAYS_FITS_JSON_BYTES = Math.floor((MAX_JSON_CHARS - OUTER_CHARS) / JSON_CHARS_PER_BYTE);

/**
 * True if `message` (whose protobuf encoding is `encodedBytes` long) is
 * longer than `maxChars` as JSON. An answer of up to about 32 MiB of
 * protobuf cannot be, and costs nothing more than this comparison; a larger
 * one is serialized once to know.
 */
export function tooLargeForJson<D extends DescMessage>(
  schema: D,
  message: MessageShape<D>,
  encodedBytes: number,
  maxChars: number = MAX_JSON_CHARS,
): boolean {
  if (encodedBytes * JSON_CHARS_PER_BYTE + OUTER_CHARS <= maxChars) return false; // cannot be longer

  try {
    return toJsonString(schema, message).length > maxChars;
  } catch (error) {
    // V8's "Invalid string length": past MAX_STRING_LENGTH.
    if (error instanceof RangeError) return true;
    throw error;
  }
}

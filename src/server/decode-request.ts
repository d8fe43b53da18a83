import { BinaryReader } from '@bufbuild/protobuf/wire';
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
export function strictDecoder<T>(codec: { decode(reader: BinaryReader): T }): (bytes: Buffer) => T | InvalidArgumentError {
  return (bytes) => {
    try {
      return codec.decode(new Reader(bytes, decodeStrictUtf8));
    } catch (error) {
      if (error instanceof InvalidArgumentError)
        return new InvalidArgumentError(`request could not be decoded: ${error.message}`, error.reason);
      if (error instanceof MalformedValueError)
        return new InvalidArgumentError(`request could not be decoded: ${error.message}`, 'INVALID_VALUE');
      return new InvalidArgumentError(`request could not be decoded: ${decodeFailure(error)}`);
    }
  };
}

function decodeFailure(error: unknown): string {
  // Node's fatal TextDecoder says which error this is by code; anything else (an int64
  // past 2^53 under forceLong=number, the decoder's recursion limit) is passed on as the decoder words it.
  if ((error as NodeJS.ErrnoException).code === 'ERR_ENCODING_INVALID_ENCODED_DATA') return 'a string field is not valid UTF-8';
  // ts-proto's words for an int64 past what a JS number holds exactly (it does not say which field).
  const message = error instanceof Error ? error.message : String(error);
  if (message === 'Value is larger than Number.MAX_SAFE_INTEGER' || message === 'Value is smaller than Number.MIN_SAFE_INTEGER') {
    return `an integer field is outside ±(2^53 - 1), the most kv takes (a revision, a lease id, ttl_ms) (${message})`;
  }
  return message;
}

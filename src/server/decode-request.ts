import type { ServiceDefinition } from '@grpc/grpc-js';
import { BinaryReader } from '@bufbuild/protobuf/wire';
import { InvalidArgumentError } from './service-errors';

interface MessageCodec<T> {
  decode(input: BinaryReader | Uint8Array): T;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const decodeStrictUtf8 = (bytes: Uint8Array): string => strictUtf8.decode(bytes);

/**
 * Replaces each method's request decoder with one that never throws.
 *
 * grpc-js answers a throwing decoder with INTERNAL, but a request that does
 * not decode is the caller's mistake: a string that is not UTF-8 (which the
 * default decoder would silently turn into U+FFFD — changing what the user
 * sent), an int64 beyond 2^53 (forceLong=number), JSON nested deeper than
 * the protobuf decoder's recursion limit. The decoder returns an
 * InvalidArgumentError in place of the request; `unary` in
 * key-value-service.ts answers it with INVALID_ARGUMENT.
 */
export function withStrictDecoding<D extends ServiceDefinition>(definition: D, codecs: { [M in keyof D]: MessageCodec<unknown> }): D {
  const strict: Record<string, unknown> = {};
  for (const [method, spec] of Object.entries(definition)) {
    const codec = codecs[method as keyof D];
    strict[method] = {
      ...spec,
      requestDeserialize: (bytes: Buffer): unknown => {
        try {
          return codec.decode(new BinaryReader(bytes, decodeStrictUtf8));
        } catch (error) {
          return new InvalidArgumentError(`request could not be decoded: ${decodeFailure(error)}`);
        }
      },
    };
  }
  return strict as D;
}

function decodeFailure(error: unknown): string {
  // Node's fatal TextDecoder says which error this is by code; anything else (an int64
  // past 2^53 under forceLong=number, the decoder's recursion limit) is passed on as the decoder words it.
  if ((error as NodeJS.ErrnoException).code === 'ERR_ENCODING_INVALID_ENCODED_DATA') return 'a string field is not valid UTF-8';
  return error instanceof Error ? error.message : String(error);
}

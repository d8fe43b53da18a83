import type { sendUnaryData, ServerUnaryCall } from '@grpc/grpc-js';
import type { KeyValueServiceServer } from '../gen/kv/v1/kv';
import type { KeyValueStore, JsonValue } from '../store/key-value-store';
import { StoreError } from '../store/errors';
import type { Logger } from '../logger';
import { toStatus } from './to-status';
import { InvalidArgumentError, KeyNotFoundError } from './service-errors';
import { decodePageToken, encodePageToken } from './page-token';

const DEFAULT_PAGE_SIZE = 100;
const MAX_PAGE_SIZE = 1000;

/**
 * Maps kv.v1 requests to the store and back. Validation of keys and values
 * against the limits lives in the store; here only what is protobuf-shaped
 * (a missing value, paging fields) is checked.
 */
export function createKeyValueService(
  store: KeyValueStore,
  logger: Logger,
  /** Called when the store reports it can no longer write, so health can say NOT_SERVING. */
  onStoreFailed: () => void = () => undefined,
): KeyValueServiceServer {
  const unary =
    <Req, Res>(handle: (request: Req) => Promise<Res>) =>
    (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
      // withStrictDecoding (decode-request.ts) hands over an error in place of a request that did not decode.
      const request: Req | InvalidArgumentError = call.request;
      if (request instanceof InvalidArgumentError) return callback(toStatus(request, logger));
      handle(request).then(
        (response) => callback(null, response),
        (error: unknown) => {
          if (error instanceof StoreError && error.code === 'FAILED') onStoreFailed();
          callback(toStatus(error, logger));
        },
      );
    };

  return {
    get: unary(async ({ key }) => {
      const entry = await store.get(key);
      if (entry === undefined) throw new KeyNotFoundError(key);
      return { entry };
    }),

    set: unary(async ({ key, value, expectedRevision }) => {
      checkExpectedRevision(expectedRevision);
      // An absent google.protobuf.Value decodes to undefined; JSON null is a real value.
      if (value === undefined) {
        throw new InvalidArgumentError(`value is required for key ${JSON.stringify(key)} (JSON null is a value)`);
      }
      return store.set(key, value as JsonValue, { expectedRevision });
    }),

    delete: unary(async ({ key, expectedRevision }) => {
      checkExpectedRevision(expectedRevision);
      return store.delete(key, { expectedRevision });
    }),

    listKeys: unary(async ({ prefix, pageSize, pageToken }) => {
      if (pageSize < 0) throw new InvalidArgumentError(`page_size must not be negative (got ${pageSize})`);
      const limit = pageSize === 0 ? DEFAULT_PAGE_SIZE : Math.min(pageSize, MAX_PAGE_SIZE);
      const startAfter = pageToken === '' ? undefined : decodePageToken(pageToken, prefix);
      const { keys, more } = await store.listKeys({ prefix, startAfter, limit });
      const nextPageToken = more && keys.length > 0 ? encodePageToken(prefix, keys[keys.length - 1]) : '';
      return { keys, nextPageToken };
    }),

    clear: unary(async ({ prefix }) => {
      const { deletedCount, revision } = await store.clear({ prefix });
      return { deletedCount, revision };
    }),
  };
}

/** Revisions start at 1 and 0 means "must not exist", so a negative one is a mistake, not a mismatch. */
function checkExpectedRevision(expectedRevision: number | undefined): void {
  if (expectedRevision !== undefined && expectedRevision < 0) {
    throw new InvalidArgumentError(`expected_revision must not be negative (got ${expectedRevision})`);
  }
}

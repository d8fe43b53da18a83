import { Metadata, status, type StatusObject } from '@grpc/grpc-js';
import { StoreError, RevisionMismatchError } from '../store/errors';
import type { Logger } from '../logger';
import { InvalidArgumentError, KeyNotFoundError } from './service-errors';

/**
 * Trailers that carry an error's structured data, so clients decide by code
 * and reason, never by message text.
 */
export const REASON_TRAILER = 'kv-reason';
export const CURRENT_REVISION_TRAILER = 'kv-current-revision';

const STORE_CODES: Record<StoreError['code'], status> = {
  INVALID_KEY: status.INVALID_ARGUMENT,
  TOO_LARGE: status.INVALID_ARGUMENT,
  INVALID_VALUE: status.INVALID_ARGUMENT,
  REVISION_MISMATCH: status.ABORTED,
  CLOSED: status.UNAVAILABLE,
  CORRUPT: status.DATA_LOSS,
  LOCKED: status.UNAVAILABLE,
  // The store refuses writes until a restart; other replicas (or a restart) can serve.
  FAILED: status.UNAVAILABLE,
};

/** The one place where errors become gRPC statuses. Anything unexpected is logged and hidden. */
export function toStatus(error: unknown, logger: Logger): Partial<StatusObject> {
  const metadata = new Metadata();
  if (error instanceof StoreError) {
    metadata.set(REASON_TRAILER, error.code);
    if (error instanceof RevisionMismatchError) {
      metadata.set(CURRENT_REVISION_TRAILER, String(error.currentRevision));
    }
    return { code: STORE_CODES[error.code], details: error.message, metadata };
  }
  if (error instanceof InvalidArgumentError) {
    metadata.set(REASON_TRAILER, error.code);
    return { code: status.INVALID_ARGUMENT, details: error.message, metadata };
  }
  if (error instanceof KeyNotFoundError) {
    metadata.set(REASON_TRAILER, error.code);
    return { code: status.NOT_FOUND, details: error.message, metadata };
  }
  logger.error({ err: error }, 'unexpected error while serving a call');
  return { code: status.INTERNAL, details: 'internal error (logged by the server)', metadata };
}

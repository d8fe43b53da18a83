/**
 * The one place where errors become statuses. describeError decides code,
 * message, reason and trailers (by error class and code, never by message
 * text); each transport renders that (toGrpcStatus here for gRPC;
 * toConnectError in http/to-connect-error.ts for Connect and gRPC-Web, loaded
 * with the HTTP port). Anything unexpected is logged and hidden behind
 * INTERNAL.
 */
import { Metadata, status, type StatusObject } from '@grpc/grpc-js';
import { ErrorReason, ErrorTrailer, errorReasonToJSON, errorTrailerToJSON, type KeepAliveError } from '../gen/kv/v1/kv';
import type { Logger } from '../logger';
import { RevisionMismatchError, StoreError, WatchCompactedError, WatchTooSlowError } from '../store/errors';
import { AuthRateLimitedError, PermissionDeniedError, UnauthenticatedError } from './access';
import { InvalidArgumentError, NotGrpcPortError } from './service-errors';

/** A trailer's name: its ErrorTrailer value's name in lower case with "-" for "_" (KV_REASON -> "kv-reason"). */
export function trailerName(trailer: ErrorTrailer): string {
  return errorTrailerToJSON(trailer).toLowerCase().replaceAll('_', '-');
}

export const REASON_TRAILER = trailerName(ErrorTrailer.KV_REASON);
export const CURRENT_REVISION_TRAILER = trailerName(ErrorTrailer.KV_CURRENT_REVISION);
export const OLDEST_REVISION_TRAILER = trailerName(ErrorTrailer.KV_OLDEST_REVISION);
export const RESUME_REVISION_TRAILER = trailerName(ErrorTrailer.KV_RESUME_REVISION);
/** gRPC's own trailer for "retry no sooner than this" (gRFC A6), which clients with a retry policy honour. */
export const RETRY_PUSHBACK_TRAILER = 'grpc-retry-pushback-ms';

/** What a failed call answers, whatever the transport. */
export interface CallStatus {
  code: status;
  message: string;
  /** Absent only for INTERNAL. */
  reason?: ErrorReason;
  /** Further structured data, by trailer name (e.g. kv-current-revision). */
  trailers: Record<string, string>;
}

const STORE_CODES: Record<StoreError['code'], status> = {
  INVALID_KEY: status.INVALID_ARGUMENT,
  TOO_LARGE: status.INVALID_ARGUMENT,
  INVALID_VALUE: status.INVALID_ARGUMENT,
  INVALID_ARGUMENT: status.INVALID_ARGUMENT,
  REVISION_MISMATCH: status.ABORTED,
  CLOSED: status.UNAVAILABLE,
  CORRUPT: status.DATA_LOSS,
  LOCKED: status.UNAVAILABLE,
  // The store refuses writes for now (it heals after an I/O error, or needs a restart); retry later or elsewhere.
  FAILED: status.UNAVAILABLE,
  // The history a watch needs is gone: re-read the state, then watch from its revision.
  COMPACTED: status.OUT_OF_RANGE,
  // The watcher read too slowly: the history it needed is gone; re-read, as for COMPACTED.
  WATCH_TOO_SLOW: status.RESOURCE_EXHAUSTED,
  NOT_FOUND: status.NOT_FOUND,
  LEASE_NOT_FOUND: status.NOT_FOUND,
  // Another key's private lease (ttl_ms): the lease exists, but not for this key.
  LEASE_PRIVATE: status.FAILED_PRECONDITION,
  // Concurrent writes from other frontends kept winning; nothing was applied, so a retry is safe.
  CONFLICT: status.ABORTED,
  // The etcd cluster behind this frontend did not answer or has no leader: another try, or another frontend.
  UNAVAILABLE: status.UNAVAILABLE,
  // As UNAVAILABLE, but the call never reached etcd: nothing was applied, so a write may be retried too.
  NOT_SENT: status.UNAVAILABLE,
  // etcd refused this server's credentials or role: nothing applied, and no retry helps until an operator acts.
  BACKEND_REFUSED: status.FAILED_PRECONDITION,
  // This engine cannot do it at all (Backup on etcd): retrying will not help.
  NOT_SUPPORTED: status.UNIMPLEMENTED,
};

/** Store error codes are ErrorReason names; one table, checked by the compiler both ways. */
const REASONS: Record<StoreError['code'], ErrorReason> = {
  INVALID_KEY: ErrorReason.INVALID_KEY,
  TOO_LARGE: ErrorReason.TOO_LARGE,
  INVALID_VALUE: ErrorReason.INVALID_VALUE,
  INVALID_ARGUMENT: ErrorReason.INVALID_ARGUMENT,
  REVISION_MISMATCH: ErrorReason.REVISION_MISMATCH,
  CLOSED: ErrorReason.CLOSED,
  CORRUPT: ErrorReason.CORRUPT,
  LOCKED: ErrorReason.LOCKED,
  FAILED: ErrorReason.FAILED,
  COMPACTED: ErrorReason.COMPACTED,
  WATCH_TOO_SLOW: ErrorReason.WATCH_TOO_SLOW,
  NOT_FOUND: ErrorReason.NOT_FOUND,
  LEASE_NOT_FOUND: ErrorReason.LEASE_NOT_FOUND,
  LEASE_PRIVATE: ErrorReason.LEASE_PRIVATE,
  CONFLICT: ErrorReason.CONFLICT,
  UNAVAILABLE: ErrorReason.UNAVAILABLE,
  NOT_SENT: ErrorReason.NOT_SENT,
  BACKEND_REFUSED: ErrorReason.BACKEND_REFUSED,
  NOT_SUPPORTED: ErrorReason.NOT_SUPPORTED,
};

export function describeError(error: unknown, logger: Logger): CallStatus {
  const described = describeKnownError(error);
  if (described !== undefined) return described;
  logger.error({ err: error }, 'unexpected error while serving a call');
  return { code: status.INTERNAL, message: 'internal error (logged by the server)', trailers: {} };
}

/**
 * A lease a KeepAlive stream may not refresh, answered in the stream (KeepAliveResponse.error) as the status of a
 * failed call would be, so that the stream goes on for the caller's other leases.
 */
export function toKeepAliveError(error: PermissionDeniedError): KeepAliveError {
  const { code, reason, message } = describeKnownError(error) as CallStatus;
  return { code, reason: reason ?? ErrorReason.ERROR_REASON_UNSPECIFIED, message };
}

/** The status of an error kv raises itself; undefined for anything else (a bug, or a library's error). */
function describeKnownError(error: unknown): CallStatus | undefined {
  if (error instanceof StoreError) {
    const trailers: Record<string, string> = {};
    if (error instanceof RevisionMismatchError) trailers[CURRENT_REVISION_TRAILER] = String(error.currentRevision);
    if (error instanceof WatchCompactedError || error instanceof WatchTooSlowError) {
      trailers[OLDEST_REVISION_TRAILER] = String(error.oldestRevision);
    }
    if (error instanceof WatchTooSlowError) trailers[RESUME_REVISION_TRAILER] = String(error.resumeRevision);
    return { code: STORE_CODES[error.code], message: error.message, reason: REASONS[error.code], trailers };
  }
  if (error instanceof InvalidArgumentError) {
    return { code: status.INVALID_ARGUMENT, message: error.message, reason: REASONS[error.reason], trailers: {} };
  }
  if (error instanceof UnauthenticatedError) {
    return { code: status.UNAUTHENTICATED, message: error.message, reason: ErrorReason.UNAUTHENTICATED, trailers: {} };
  }
  if (error instanceof PermissionDeniedError) {
    return { code: status.PERMISSION_DENIED, message: error.message, reason: ErrorReason.PERMISSION_DENIED, trailers: {} };
  }
  if (error instanceof AuthRateLimitedError) {
    const trailers = { [RETRY_PUSHBACK_TRAILER]: String(Math.ceil(error.retryAfterMs)) };
    return { code: status.RESOURCE_EXHAUSTED, message: error.message, reason: ErrorReason.AUTH_RATE_LIMITED, trailers };
  }
  if (error instanceof NotGrpcPortError) {
    // Nothing here can serve it; the gRPC port, elsewhere, can. Reflection's clients read UNIMPLEMENTED as "no
    // reflection" and drop the message: FAILED_PRECONDITION there (the call was sent to the wrong port).
    const code = error.reflection ? status.FAILED_PRECONDITION : status.UNIMPLEMENTED;
    return { code, message: error.message, reason: ErrorReason.NOT_GRPC, trailers: {} };
  }
  return undefined;
}

/** describeError rendered for grpc-js: reason and data in trailers. */
export function toGrpcStatus(error: unknown, logger: Logger): Partial<StatusObject> {
  const described = describeError(error, logger);
  const metadata = new Metadata();
  if (described.reason !== undefined) metadata.set(REASON_TRAILER, errorReasonToJSON(described.reason));
  for (const [name, value] of Object.entries(described.trailers)) metadata.set(name, value);
  return { code: described.code, details: described.message, metadata };
}

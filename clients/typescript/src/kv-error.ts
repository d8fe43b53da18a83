import { status, type ServiceError } from '@grpc/grpc-js';

/**
 * Why a call failed, decided from the status code and the server's
 * `kv-reason` trailer — never from message text.
 */
export type KvErrorReason =
  | 'NOT_FOUND'
  | 'REVISION_MISMATCH'
  | 'INVALID_KEY'
  | 'TOO_LARGE'
  | 'INVALID_VALUE'
  | 'INVALID_ARGUMENT'
  | 'UNAVAILABLE'
  | 'DEADLINE_EXCEEDED'
  | 'CANCELLED'
  | 'DATA_LOSS'
  | 'INTERNAL'
  | 'UNKNOWN';

const REASONS_FROM_SERVER: ReadonlySet<string> = new Set([
  'NOT_FOUND',
  'REVISION_MISMATCH',
  'INVALID_KEY',
  'TOO_LARGE',
  'INVALID_VALUE',
  'INVALID_ARGUMENT',
]);

const REASONS_FROM_CODE: Partial<Record<status, KvErrorReason>> = {
  [status.NOT_FOUND]: 'NOT_FOUND',
  [status.ABORTED]: 'REVISION_MISMATCH',
  [status.INVALID_ARGUMENT]: 'INVALID_ARGUMENT',
  [status.RESOURCE_EXHAUSTED]: 'TOO_LARGE',
  [status.UNAVAILABLE]: 'UNAVAILABLE',
  [status.DEADLINE_EXCEEDED]: 'DEADLINE_EXCEEDED',
  [status.CANCELLED]: 'CANCELLED',
  [status.DATA_LOSS]: 'DATA_LOSS',
  [status.INTERNAL]: 'INTERNAL',
};

/** The one error type the SDK throws. */
export class KvError extends Error {
  /** The gRPC status code (see `status` from @grpc/grpc-js). */
  readonly code: status;
  readonly reason: KvErrorReason;
  /** For REVISION_MISMATCH: the key's current mod_revision (0 if it does not exist). */
  readonly currentRevision: number | undefined;

  constructor(message: string, code: status, reason: KvErrorReason, currentRevision?: number, cause?: unknown) {
    super(message, { cause });
    this.name = 'KvError';
    this.code = code;
    this.reason = reason;
    this.currentRevision = currentRevision;
  }

  /** Normalises whatever a call threw into a KvError. */
  static from(error: unknown): KvError {
    if (error instanceof KvError) return error;
    if (!isServiceError(error)) {
      return new KvError(error instanceof Error ? error.message : String(error), status.UNKNOWN, 'UNKNOWN', undefined, error);
    }
    const [serverReason] = error.metadata?.get('kv-reason') ?? [];
    const reason =
      typeof serverReason === 'string' && REASONS_FROM_SERVER.has(serverReason)
        ? (serverReason as KvErrorReason)
        : (REASONS_FROM_CODE[error.code] ?? 'UNKNOWN');
    const [revision] = error.metadata?.get('kv-current-revision') ?? [];
    const currentRevision = typeof revision === 'string' && /^\d+$/.test(revision) ? Number(revision) : undefined;
    return new KvError(error.details || error.message, error.code, reason, currentRevision, error);
  }
}

function isServiceError(error: unknown): error is ServiceError {
  return error instanceof Error && typeof (error as Partial<ServiceError>).code === 'number' && 'metadata' in error;
}

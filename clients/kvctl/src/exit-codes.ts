import { status, type KvError } from '@kv/client';

/** kvctl's exit codes: one per kind of outcome, so scripts can branch without reading messages. */
export const EXIT = {
  ok: 0,
  notFound: 1,
  usage: 2,
  conflict: 3,
  unavailable: 4,
  rejected: 5,
  denied: 6,
  declined: 7,
  serverError: 8,
  damaged: 9,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** The exit codes as `kvctl --help` and the README list them. */
export const EXIT_CODES_HELP = `Exit codes:
  0  ok
  1  not found: get of a missing key, or a lease that does not exist (set --lease, lease keepalive, ...)
  2  usage: a bad flag, argument, JSON value or file, or a file, directory or output kvctl cannot write (backup, restore, any command's stdout: no permission, a full disk, ...; a change whose output was lost is still made)
  3  conflict: --expected-revision did not match, a txn's compares did not hold, or import found keys on the server (without --overwrite)
  4  unavailable: no server answered in time (or what answered does not speak gRPC: another port, such as --http-listen's), it is shutting down, or health is not SERVING (with several endpoints: not all of them)
  5  rejected: the server refused the request (bad key, value too large, ...); for watch also: it cannot resume (COMPACTED, or REVISION_WENT_BACK: the store has another history): list again with get --prefix P --print-revision and watch from the revision it says + 1
  6  denied: not authenticated or not allowed, or too many failed authentications from this address (AUTH_RATE_LIMITED: try again later)
  7  declined: a confirmation was answered no
  8  server error (INTERNAL, DATA_LOSS, UNKNOWN, BACKEND_REFUSED: etcd refuses the server's own user or role, ...)
  9  damaged: a backup file is not one, is incomplete or fails its checksum
  130  interrupted: Ctrl-C (SIGINT; 143 for SIGTERM): kvctl ends by the signal, as a shell reports it, watch and lease keepalive too (import first lets the transaction in flight finish and says how far it got; backup and restore first remove what they had written)`;

/** The exit code for a failed call: by its reason where the status code would mislead, otherwise by the code. */
export function exitCodeForError(error: KvError): ExitCode {
  // RESOURCE_EXHAUSTED, but an authentication refusal, and a temporary one: not "rejected, do not retry".
  if (error.reason === 'AUTH_RATE_LIMITED') return EXIT.denied;
  // Whatever HTTP status it came with: the address is not a kv-server's gRPC port, as when nothing answers there.
  if (error.reason === 'NOT_GRPC') return EXIT.unavailable;
  // FAILED_PRECONDITION, but of the server's own setup (its etcd user or role), nothing in the request: an operator's to fix.
  if (error.reason === 'BACKEND_REFUSED') return EXIT.serverError;
  return exitCodeForStatus(error.code);
}

/** The exit code for a failed call, from its gRPC status code. */
export function exitCodeForStatus(code: status): ExitCode {
  switch (code) {
    case status.NOT_FOUND:
      return EXIT.notFound;
    case status.ABORTED:
      return EXIT.conflict;
    case status.UNAVAILABLE:
    case status.DEADLINE_EXCEEDED:
      return EXIT.unavailable;
    case status.INVALID_ARGUMENT:
    case status.RESOURCE_EXHAUSTED:
    case status.OUT_OF_RANGE:
    case status.FAILED_PRECONDITION:
    case status.ALREADY_EXISTS:
    case status.UNIMPLEMENTED:
      return EXIT.rejected;
    case status.UNAUTHENTICATED:
    case status.PERMISSION_DENIED:
      return EXIT.denied;
    default:
      return EXIT.serverError;
  }
}

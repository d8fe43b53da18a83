/**
 * The Connect protocol's own request headers, checked as connect-go (the
 * protocol's reference server) checks them, before a call is read or run:
 * connect-es takes any connect-protocol-version, and runs a call whose
 * connect-timeout-ms is 0 though its deadline has passed before it began.
 * And the deadlines of Connect and gRPC-Web calls, capped at what a timer
 * can hold; and these headers sent more than once.
 */
import { Code, ConnectError, createContextKey } from '@connectrpc/connect';
import { MAX_TIMER_MS } from '../../max-timer';
import { InvalidArgumentError } from '../service-errors';
import { headerLines } from './header-lines';

const VERSION_HEADER = 'connect-protocol-version';
const TIMEOUT_HEADER = 'connect-timeout-ms';
const GRPC_TIMEOUT_HEADER = 'grpc-timeout';
/** A connect-timeout-ms the protocol allows: milliseconds, 1 to 10 digits. */
const CONNECT_TIMEOUT = /^\d{1,10}$/;
/** gRPC's timeout as connect-es reads it (protocol-grpc/parse-timeout.ts): up to 8 digits and a unit. */
const GRPC_TIMEOUT = /^(\d{1,8})([HMSmun])$/;
const GRPC_UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

/** Headers that hold one value each, which a client may still send more than once. */
const SINGLE_VALUED = [VERSION_HEADER, TIMEOUT_HEADER, GRPC_TIMEOUT_HEADER];

/** The headers of SINGLE_VALUED that a call sent in several lines with different values (collapseRepeats). */
export const SENT_UNLIKE = createContextKey<ReadonlySet<string>>(new Set(), { description: 'kv headers sent more than once, unlike' });
const NONE: ReadonlySet<string> = new Set();

/**
 * A header of SINGLE_VALUED sent in several lines, all with the same value,
 * taken once; the names of those sent with different values are returned
 * (for SENT_UNLIKE), their lines left joined, and refused saying so
 * (checkConnectHeaders; gRPC-Web's by connect-es) rather than one of them
 * silently chosen. Node joins repeated lines into one value ("5, 5", as HTTP
 * lets a recipient do), which connect-es then refused as not a number;
 * connect-go takes the first line. The joined value cannot tell one line
 * holding a comma ("1,000", malformed) from two lines, so the lines are
 * counted in `rawHeaders` (Node's HTTP/1.1 and HTTP/2 requests alike keep
 * every line there): a single line is left as sent, and refused as the
 * malformed value it is.
 */
export function collapseRepeats(header: Headers, rawHeaders: readonly string[]): ReadonlySet<string> {
  let unlike: Set<string> | undefined;
  for (const name of SINGLE_VALUED) {
    // A value without a comma came in one line: Node joins several with ", ".
    if (!(header.get(name) ?? '').includes(',')) continue;
    const lines = headerLines(rawHeaders, name).map((line) => line.trim());
    if (lines.length < 2) continue;
    if (lines.every((line) => line === lines[0])) header.set(name, lines[0]);
    else (unlike ??= new Set()).add(name);
  }
  return unlike ?? NONE;
}

/**
 * A deadline longer than MAX_TIMER_MS (about 24.8 days) made that long:
 * connect-es keeps a call's deadline in one timer, which Node fires after
 * 1 ms when given more, so a Connect call with connect-timeout-ms
 * 2147483648 (10 digits, which the protocol allows) or a gRPC-Web call with
 * grpc-timeout 99999999H ended deadline_exceeded at once, a write applied
 * all the same. The Connect protocol lets a server clamp timeouts so.
 * Headers that are not a deadline are left for the protocols' own checks.
 */
export function capDeadline(header: Headers): void {
  const timeout = header.get(TIMEOUT_HEADER);
  if (timeout !== null && CONNECT_TIMEOUT.test(timeout) && Number(timeout) > MAX_TIMER_MS) {
    header.set(TIMEOUT_HEADER, String(MAX_TIMER_MS));
  }
  const grpc = GRPC_TIMEOUT.exec(header.get(GRPC_TIMEOUT_HEADER) ?? '');
  if (grpc !== null && Number(grpc[1]) * GRPC_UNIT_MS[grpc[2]] > MAX_TIMER_MS) {
    header.set(GRPC_TIMEOUT_HEADER, `${Math.floor(MAX_TIMER_MS / 1000)}S`);
  }
}

/**
 * Throws for a connect-protocol-version or connect-timeout-ms sent more than
 * once with different values (`unlike`: INVALID_ARGUMENT; see
 * collapseRepeats), for a connect-protocol-version other than "1"
 * (INVALID_ARGUMENT; a request without one is served, as the protocol lets
 * clients leave it out), and for a connect-timeout-ms that is not 1 to 10
 * digits (INVALID_ARGUMENT) or is 0 (DEADLINE_EXCEEDED: connect-go's deadline
 * of 0 has passed, and it runs nothing past one).
 */
export function checkConnectHeaders(header: Headers, unlike: ReadonlySet<string>): void {
  for (const name of [VERSION_HEADER, TIMEOUT_HEADER]) {
    if (unlike.has(name)) {
      throw new InvalidArgumentError(
        `${name} was sent more than once, with different values (${JSON.stringify(header.get(name))}): send it once`,
      );
    }
  }
  const version = header.get(VERSION_HEADER);
  if (version !== null && version !== '1') {
    throw new InvalidArgumentError(`${VERSION_HEADER} must be "1", the Connect protocol's only version: got ${JSON.stringify(version)}`);
  }
  const timeout = header.get(TIMEOUT_HEADER);
  if (timeout === null) return;
  if (!CONNECT_TIMEOUT.test(timeout)) {
    throw new InvalidArgumentError(
      `${TIMEOUT_HEADER} must be a whole number of milliseconds, 1 to 10 digits (leave it out for no deadline): got ${JSON.stringify(timeout)}`,
    );
  }
  if (Number(timeout) === 0) {
    throw new ConnectError(
      `${TIMEOUT_HEADER} ${timeout} leaves the call no time: it was not run (leave the header out for no deadline)`,
      Code.DeadlineExceeded,
    );
  }
}

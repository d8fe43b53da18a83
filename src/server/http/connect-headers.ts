/**
 * The Connect protocol's own request headers, checked as connect-go (the
 * protocol's reference server) checks them, before a call is read or run:
 * connect-es takes any connect-protocol-version, and runs a call whose
 * connect-timeout-ms is 0 though its deadline has passed before it began.
 */
import { Code, ConnectError } from '@connectrpc/connect';
import { InvalidArgumentError } from '../service-errors';

const VERSION_HEADER = 'connect-protocol-version';
const TIMEOUT_HEADER = 'connect-timeout-ms';

/**
 * Throws for a connect-protocol-version other than "1" (INVALID_ARGUMENT; a
 * request without one is served, as the protocol lets clients leave it out),
 * and for a connect-timeout-ms that is not 1 to 10 digits (INVALID_ARGUMENT)
 * or is 0 (DEADLINE_EXCEEDED: connect-go's deadline of 0 has passed, and it
 * runs nothing past one).
 */
export function checkConnectHeaders(header: Headers): void {
  const version = header.get(VERSION_HEADER);
  if (version !== null && version !== '1') {
    throw new InvalidArgumentError(`${VERSION_HEADER} must be "1", the Connect protocol's only version: got ${JSON.stringify(version)}`);
  }
  const timeout = header.get(TIMEOUT_HEADER);
  if (timeout === null) return;
  if (!/^\d{1,10}$/.test(timeout)) {
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

/**
 * Why no connection was made, in kvctl's words. grpc-js passes on the text
 * of whatever failed (OpenSSL's error queue, nghttp2's "Protocol error",
 * a timestamp); kvctl has no other signal than that text, so each cause is
 * recognised here, once, and said with what to do about it.
 */
import type { KvError } from '@kv/client';
import { EXIT, type ExitCode } from './exit-codes';
import type { GlobalOptions } from './global-options';

/** The SDK's words for a connection the server closed as it was set up (followed by its guess at why). */
const FAILED_TO_CONNECT = 'no connection: Failed to connect';
const CONNECTION_RESET = 'no connection: read ECONNRESET';

const CERTIFICATE_REQUIRED = 'the server requires a client certificate (mutual TLS): give --tls-cert and --tls-key';

/** What went wrong, in one line without the endpoint (the caller names it), and the exit code for it. */
export interface ConnectionFailure {
  text: string;
  exitCode: ExitCode;
}

/**
 * A call that reached no server, said plainly, naming the flags (or
 * variables) to change. A server refusing a connection without a client
 * certificate is denied (exit 6: trying again will not help), not
 * unavailable; anything else is unavailable (exit 4).
 */
export function describeConnectionFailure(error: KvError, options: GlobalOptions): ConnectionFailure {
  if (certificateRequired(error)) return { text: CERTIFICATE_REQUIRED, exitCode: EXIT.denied };
  return { text: plainText(error.message, options), exitCode: EXIT.unavailable };
}

/** Whether a server refused the TLS handshake for want of a client certificate (OpenSSL's alert, in grpc-js's message). */
function certificateRequired(error: KvError): boolean {
  return /alert certificate required/i.test(error.message);
}

function plainText(message: string, options: GlobalOptions): string {
  const { names } = options;
  const tlsGiven = (['tlsCa', 'tlsCert', 'tlsKey'] as const).filter((key) => options[key] !== undefined).map((key) => names[key]);
  const tls = tlsGiven.length > 0;
  // TLS spoken to a port that answers in plaintext: OpenSSL reads its first bytes as a record of an unknown version.
  if (tls && /wrong version number/i.test(message)) {
    return `no connection: the server does not speak TLS: drop ${tlsGiven.join(', ')}, or check the port`;
  }
  // A certificate chain that --tls-ca does not lead to (Node's words for OpenSSL's verify errors).
  if (
    tls &&
    /unable to verify the first certificate|unable to get (?:local )?issuer certificate|self[- ]signed certificate/i.test(message)
  ) {
    const trusted = options.tlsCa === undefined ? `a CA this system trusts: give ${names.tlsCa}` : `the CA in ${names.tlsCa}`;
    return `${message.trim()}: the server's certificate is not signed by ${trusted}`;
  }
  // A certificate not issued for the name kvctl checked it against (Node's ERR_TLS_CERT_ALTNAME_INVALID).
  if (tls && /does not match certificate's altnames/.test(message)) {
    const hint =
      options.tlsServerName === undefined
        ? `if the server is reached by another name (an ssh tunnel), give the name its certificate is issued for with ${names.tlsServerName}`
        : `the server's certificate is not issued for ${names.tlsServerName} ${options.tlsServerName}`;
    return `${message.replace(/Error \[ERR_TLS_CERT_ALTNAME_INVALID\]: /, '').replace(/[\s:]*$/, '')}: ${hint}`;
  }
  // HTTP/2 spoken to a server that answered in something else, HTTP/1.1 most likely.
  if (!tls && /^no connection: Protocol error\b/.test(message)) {
    return (
      "no connection: not a gRPC server: it answered, but not in HTTP/2 (an HTTP/1.1 server, such as kv-server's " +
      '--metrics-listen port? gRPC is on its --listen port)'
    );
  }
  // grpc-js ends some messages with a timestamp, and OpenSSL's with a source file and a newline: neither helps a person.
  const plain = message
    .replace(/\s*\(\d{4}-\d\d-\d\dT[\d:.]+Z\)/g, '')
    .replace(/[0-9A-F]+:error:[0-9A-F]+:SSL routines:[^:]*:([^:]+):\S*/g, 'TLS: $1')
    .trim();
  // grpc-js only says "Failed to connect" when a TLS handshake fails: plaintext to a TLS server, or over TLS a client
  // certificate the server does not accept. The SDK names both; kvctl knows which applies, and the flag to look at.
  if (plain.startsWith(FAILED_TO_CONNECT)) {
    if (!tls) return `${FAILED_TO_CONNECT}; the server may require TLS: give ${names.tlsCa}`;
  }
  // A server that refuses the client certificate closes the connection: the client reads that as either.
  const closed = [FAILED_TO_CONNECT, CONNECTION_RESET].find((words) => plain.startsWith(words));
  if (closed !== undefined && tls && options.tlsCert !== undefined) {
    return `${closed}; the server may not accept the client certificate in ${names.tlsCert} (not signed by a CA it trusts?)`;
  }
  return plain;
}

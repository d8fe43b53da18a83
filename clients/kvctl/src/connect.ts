import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { credentials, isLoopbackAddress, KvClient, type KvClientOptions } from '@kv/client';
import { CliError } from './cli-error';
import type { GlobalOptions } from './global-options';

/** Attempts of a read (and of opening a watch) before kvctl says the server is unreachable. */
export const READ_ATTEMPTS = 6;

/**
 * The SDK client for the global options: every endpoint (frontends of one
 * deployment), which the SDK uses in turn, failing reads over to the next.
 */
export function connect(options: GlobalOptions): KvClient {
  const tls = options.tlsCa !== undefined || options.tlsCert !== undefined;
  for (const endpoint of options.endpoints) {
    checkEndpoint(endpoint, options.names.endpoint);
    // The SDK's rule, so that kvctl refuses exactly what KvClient would (with the flags to give instead).
    if (!tls && !options.insecure && !isLoopbackAddress(endpoint)) {
      throw new CliError(`${endpoint} is not a loopback address: give --tls-ca (TLS), or --insecure to send in plaintext`);
    }
  }
  // A read retries a server that is restarting for about 2 s (backoff 50, 100, ... 800 ms), then says it is unreachable:
  // the SDK's default (retry until the deadline) would keep a person waiting --timeout-ms for a server that is down.
  const clientOptions: KvClientOptions = {
    deadlineMs: options.timeoutMs,
    token: options.tokenFile === undefined ? options.token : readToken(options.tokenFile, options.names.tokenFile),
    retry: { attempts: READ_ATTEMPTS },
    insecure: options.insecure === true,
  };
  if (tls) clientOptions.credentials = tlsCredentials(options);
  // grpc-js then sends this name in the handshake (SNI) and checks the certificate against it; it is still checked.
  // A fully-qualified name's trailing dot goes: SNI carries a name without it (RFC 6066), and Node's check drops it anyway.
  if (options.tlsServerName !== undefined) {
    clientOptions.channelOptions = { 'grpc.ssl_target_name_override': options.tlsServerName.replace(/\.$/, '') };
  }
  try {
    return new KvClient(options.endpoints, clientOptions);
  } catch (error) {
    // The SDK refuses a token that cannot travel in a header; its words do not repeat the token.
    const given = options.tokenFile === undefined ? options.names.token : `${options.names.tokenFile} ${options.tokenFile}`;
    throw new CliError(`${given}: ${(error as Error).message}`);
  }
}

/** How every token the server makes starts (src/auth/token.ts). */
const TOKEN_PREFIX = 'kv_';

/** A token file larger than this is not one (the server's tokens are a few dozen characters). */
const MAX_TOKEN_FILE_BYTES = 64 * 1024;

/**
 * The token in a --token-file: its text without the whitespace around it (the
 * line end an editor or `echo` adds; a token has no whitespace of its own).
 */
function readToken(file: string, flag: string): string {
  if (file === '') throw new CliError(`${flag} is empty: give the path of a file holding the token`);
  let text: string;
  let fd: number | undefined;
  try {
    // At most MAX_TOKEN_FILE_BYTES + 1 bytes are read: a wrong path (/dev/zero, a log) fails at once instead of filling memory.
    fd = openSync(file, 'r');
    const buf = Buffer.alloc(MAX_TOKEN_FILE_BYTES + 1);
    let size = 0;
    for (let n = -1; n !== 0 && size < buf.length; size += n) n = readSync(fd, buf, size, buf.length - size, null);
    if (size > MAX_TOKEN_FILE_BYTES)
      throw new CliError(`${flag}: ${file} holds more than ${MAX_TOKEN_FILE_BYTES} bytes: is it the token file?`);
    text = buf.toString('utf8', 0, size);
  } catch (error) {
    if (error instanceof CliError) throw error;
    // A token given where its file's path goes (--token-file kv_...) is not repeated on stderr, which may well be a CI log.
    if (file.startsWith(TOKEN_PREFIX)) {
      const why = (error as NodeJS.ErrnoException).code ?? 'error';
      throw new CliError(
        `${flag}: cannot read the file it names (${why}); the name looks like a token: write the token in a file, give its path`,
      );
    }
    throw new CliError(`${flag}: cannot read ${file}: ${(error as Error).message}`);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  const token = text.trim();
  if (token === '') throw new CliError(`${flag}: ${file} is empty: write the token in it`);
  return token;
}

/**
 * TLS credentials from the PEM files, each checked first, so that a file
 * that is not what its flag needs is a usage error naming it (a --tls-ca
 * without a certificate would otherwise be taken as no CA at all).
 */
function tlsCredentials(options: GlobalOptions): ReturnType<typeof credentials.createSsl> {
  const { names } = options;
  const ca = readPem(options.tlsCa, names.tlsCa);
  const cert = readPem(options.tlsCert, names.tlsCert);
  const key = readPem(options.tlsKey, names.tlsKey);
  if (ca !== null) certificates(ca, options.tlsCa as string, names.tlsCa);
  if (cert !== null && key !== null) {
    const [leaf] = certificates(cert, options.tlsCert as string, names.tlsCert);
    const privateKey = parsePrivateKey(key, options.tlsKey as string, names.tlsKey);
    if (!leaf.checkPrivateKey(privateKey)) {
      throw new CliError(
        `${names.tlsKey} ${options.tlsKey} is not the private key of ${names.tlsCert} ${options.tlsCert} (they do not match)`,
      );
    }
    checkValidNow(leaf, options.tlsCert as string, names.tlsCert);
  }
  try {
    return credentials.createSsl(ca, key, cert);
  } catch (error) {
    const files = [options.tlsCa, options.tlsCert, options.tlsKey].filter((file) => file !== undefined).join(', ');
    throw new CliError(`cannot use the TLS files ${files}: ${(error as Error).message}`);
  }
}

function readPem(file: string | undefined, flag: string): Buffer | null {
  if (file === undefined) return null;
  try {
    return readFileSync(file);
  } catch (error) {
    throw new CliError(`${flag}: cannot read ${file}: ${(error as Error).message}`);
  }
}

/** The PEM certificates in a file, in order; none, or one that does not parse, is a usage error. */
function certificates(pem: Buffer, file: string, flag: string): X509Certificate[] {
  const blocks = pem.toString('latin1').match(/-----BEGIN CERTIFICATE-----[^-]*-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new CliError(`${flag}: ${file} holds no PEM certificate ("-----BEGIN CERTIFICATE-----")`);
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch (error) {
      throw new CliError(`${flag}: certificate ${i + 1} in ${file} cannot be read: ${(error as Error).message}`);
    }
  });
}

/**
 * A client certificate out of its validity is refused here: the server ends such a handshake without a
 * word, which kvctl could only report as "no connection", the same as a server that is down.
 */
function checkValidNow(leaf: X509Certificate, file: string, flag: string, now = new Date()): void {
  const [from, to] = [new Date(leaf.validFrom), new Date(leaf.validTo)];
  if (to < now) {
    throw new CliError(`${flag} ${file} expired on ${isoSeconds(to)} (servers refuse an expired client certificate)`);
  }
  if (from > now) {
    const hint = "servers refuse it until then; if that date has passed, check this machine's clock";
    throw new CliError(`${flag} ${file} is not valid until ${isoSeconds(from)} (${hint})`);
  }
}

const isoSeconds = (date: Date): string => date.toISOString().replace(/\.\d{3}Z$/, 'Z');

function parsePrivateKey(pem: Buffer, file: string, flag: string): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch (error) {
    // Without a passphrase OpenSSL can only say "interrupted or cancelled", which reads like a damaged file.
    if (isEncryptedKey(pem)) {
      throw new CliError(
        `${flag}: ${file} is encrypted (passphrase-protected), and kvctl does not take encrypted keys: write a decrypted copy ` +
          `with \`openssl pkey -in ${shellWord(file)} -out key.pem\` (it asks for the passphrase) and give that to ${flag}`,
      );
    }
    throw new CliError(`${flag}: ${file} is not a PEM private key kvctl can use: ${(error as Error).message}`);
  }
}

/** A passphrase-protected PEM key: PKCS#8 ("ENCRYPTED PRIVATE KEY"), or the older form with a "Proc-Type: 4,ENCRYPTED" header. */
function isEncryptedKey(pem: Buffer): boolean {
  const text = pem.toString('latin1');
  return text.includes('-----BEGIN ENCRYPTED PRIVATE KEY-----') || /^Proc-Type:[ \t]*4,[ \t]*ENCRYPTED[ \t]*\r?$/m.test(text);
}

/** A file name as a shell takes it, so that the command in a message works when pasted. */
function shellWord(file: string): string {
  return /^[\w@%+=:,./-]+$/.test(file) ? file : `'${file.replace(/'/g, `'\\''`)}'`;
}

/**
 * Refuses an endpoint that is not "host:port" or "[v6]:port" (optionally
 * after dns:, ipv4: or ipv6:) or a unix socket. Without a port grpc-js
 * would quietly use 443, so a missing or impossible port is a usage error.
 */
function checkEndpoint(endpoint: string, flag: string): void {
  if (endpoint.startsWith('unix:') || endpoint.startsWith('unix-abstract:')) return;
  // A URL (http://host:port) is what many tools take; gRPC targets have no such scheme, and TLS is a flag.
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(endpoint)?.[1];
  if (scheme !== undefined && !/^(dns|ipv4|ipv6)$/i.test(scheme)) {
    throw new CliError(`${flag}: "${endpoint}": give host:port without "${scheme}://" (for TLS, give --tls-ca)`);
  }
  const target = endpoint.replace(/^(dns|ipv4|ipv6):(\/\/[^/]*\/)?/, '');
  if (!target.startsWith('[') && target.indexOf(':') !== target.lastIndexOf(':')) {
    throw new CliError(`${flag}: "${endpoint}" has no port (an IPv6 address goes in brackets, then the port: [${target}]:50051)`);
  }
  const match = /^(?:\[([^\]]*)\]|([^:[\]]*))(?::(.*))?$/.exec(target);
  if (match === null || (match[1] ?? match[2]) === '') throw new CliError(`${flag}: "${endpoint}" is not host:port`);
  const host = match[1] ?? match[2];
  const port = match[3];
  if (port === undefined) {
    const example = match[1] === undefined ? `${host}:50051` : `[${host}]:50051`;
    throw new CliError(`${flag}: "${endpoint}" has no port (give host:port, e.g. ${example})`);
  }
  if (!/^\d+$/.test(port)) throw new CliError(`${flag}: "${endpoint}": "${port}" is not a port number`);
  if (Number(port) < 1 || Number(port) > 65535) throw new CliError(`${flag}: "${endpoint}": a port is 1 to 65535`);
}

/**
 * Reads the PEM files named by --tls-cert, --tls-key and --tls-client-ca, at
 * start and on every SIGHUP, and checks them before the server sees them:
 * each parses, the key belongs to the certificate, the certificate is valid
 * now (neither expired nor valid only from a date to come). A failure names
 * the file and what is wrong with it, in one line.
 */
import { readFileSync } from 'node:fs';
import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import type { TlsMaterial } from '../server/tls-credentials';

export interface TlsFiles {
  certFile: string;
  keyFile: string;
  clientCaFile?: string;
}

export class TlsFileError extends Error {}

export function readTlsFiles({ certFile, keyFile, clientCaFile }: TlsFiles, now = new Date()): TlsMaterial {
  const cert = read(certFile, '--tls-cert');
  const key = read(keyFile, '--tls-key');
  const clientCa = clientCaFile === undefined ? undefined : read(clientCaFile, '--tls-client-ca');

  const [leaf] = certificates(cert, certFile, '--tls-cert');
  const privateKey = parsePrivateKey(key, keyFile, '--tls-key');
  if (!leaf.checkPrivateKey(privateKey)) {
    throw new TlsFileError(`${keyFile} (--tls-key) is not the private key of the certificate in ${certFile}`);
  }
  checkValidNow(leaf, certFile, '--tls-cert', now);
  if (clientCa !== undefined && clientCaFile !== undefined) certificates(clientCa, clientCaFile, '--tls-client-ca');
  return { cert, key, clientCa };
}

/** The key in a PEM file; a TlsFileError naming the file and `flag` if it holds none, or one kv cannot use. */
export function parsePrivateKey(pem: Buffer, file: string, flag: string): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch (error) {
    // Without a passphrase OpenSSL can only say "interrupted or cancelled", which reads like a damaged file.
    if (isEncryptedKey(pem)) {
      throw new TlsFileError(
        `${file} (${flag}) is encrypted (passphrase-protected), and kv does not take encrypted keys: write a decrypted copy with ` +
          `\`openssl pkey -in ${shellWord(file)} -out key.pem\` (it asks for the passphrase) and give that to ${flag}`,
      );
    }
    throw new TlsFileError(`${file} (${flag}) is not a PEM private key: ${(error as Error).message}`);
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

function read(file: string, flag: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new TlsFileError(`cannot read ${file} (${flag}): ${(error as Error).message}`);
  }
}

/**
 * Refuses a certificate that has expired, or is valid only from a date to come (peers refuse it until then: used
 * now, it would fail every new connection).
 */
export function checkValidNow(leaf: X509Certificate, file: string, flag: string, now = new Date()): void {
  if (new Date(leaf.validTo) < now) throw new TlsFileError(`the certificate in ${file} (${flag}) expired on ${leaf.validTo}`);
  if (new Date(leaf.validFrom) > now) throw new TlsFileError(`the certificate in ${file} (${flag}) is not valid until ${leaf.validFrom}`);
}

/** Every certificate in a PEM file; at least one. */
export function certificates(pem: Buffer, file: string, flag: string): X509Certificate[] {
  const blocks = pem.toString('latin1').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new TlsFileError(`${file} holds no PEM certificate (${flag})`);
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch (error) {
      throw new TlsFileError(`certificate ${i + 1} in ${file} (${flag}) does not parse: ${(error as Error).message}`);
    }
  });
}

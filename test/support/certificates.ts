/**
 * Real certificates made at test time with the openssl command line: CAs,
 * server and client certificates (with SANs), and expired ones. EC P-256
 * keys, so a whole suite's worth takes well under a second.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { connect } from 'node:tls';

export interface CertificateFiles {
  cert: string;
  key: string;
}

export interface TestCa extends CertificateFiles {
  name: string;
}

export interface IssueOptions {
  /** Subject alternative names, as openssl takes them: "DNS:localhost", "IP:127.0.0.1". */
  san?: string[];
  /** Valid from 2020-01-01 to 2020-01-02. */
  expired?: boolean;
  /** Valid from 2099-01-01 to 2099-01-02: not yet. */
  notYetValid?: boolean;
  /** A file name stem when one CA issues several certificates with the same CN (rotation). */
  file?: string;
  /** The whole subject, as openssl's -subj takes it ("/O=x/CN=a/CN=b"), instead of /CN=cn. */
  subject?: string;
  /** Valid from a minute ago until this moment (to the second): a certificate that expires while a test runs. */
  notAfter?: Date;
  /** A CA certificate (an intermediate CA, makeIntermediateCa). */
  ca?: boolean;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

export function makeCa(dir: string, name: string): TestCa {
  const files = { name, cert: path.join(dir, `${name}.crt`), key: path.join(dir, `${name}.key`) };
  openssl(dir, [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', files.key, '-out', files.cert, '-subj', `/CN=${name}`, '-days', '2',
  ]); // prettier-ignore
  return files;
}

/** A certificate for `cn` signed by `ca`; usable for TLS servers and clients alike. */
export function issue(dir: string, ca: TestCa, cn: string, options: IssueOptions = {}): CertificateFiles {
  const stem = path.join(dir, options.file ?? `${cn}-by-${ca.name}`);
  const files = { cert: `${stem}.crt`, key: `${stem}.key` };
  const csr = `${stem}.csr`;
  const san = options.san ?? [];
  openssl(dir, [
    'req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', files.key, '-out', csr,
    '-subj', options.subject ?? `/CN=${cn}`, ...(san.length > 0 ? ['-addext', `subjectAltName=${san.join(',')}`] : []),
    ...(options.ca ? ['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'] : []),
  ]); // prettier-ignore
  if (!options.expired && !options.notYetValid && options.notAfter === undefined) {
    openssl(dir, [
      'x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-days', '2',
      '-copy_extensions', 'copyall', '-out', files.cert,
    ]); // prettier-ignore
    return files;
  }
  // `openssl x509` cannot set the start date; `openssl ca` can, with a throwaway database.
  const config = `${stem}.ca.cnf`;
  writeFileSync(
    config,
    [
      '[ca]',
      'default_ca = test',
      '[test]',
      `database = ${stem}.index`,
      `new_certs_dir = ${dir}`,
      `serial = ${stem}.serial`,
      'default_md = sha256',
      'policy = any',
      'copy_extensions = copyall',
      '[any]',
      'commonName = supplied',
    ].join('\n'),
  );
  writeFileSync(`${stem}.index`, '');
  writeFileSync(`${stem}.serial`, '01\n');
  const dates =
    options.notAfter !== undefined
      ? [asnTime(new Date(Date.now() - 60_000)), asnTime(options.notAfter)]
      : options.expired
        ? ['20200101000000Z', '20200102000000Z']
        : ['20990101000000Z', '20990102000000Z'];
  openssl(dir, [
    'ca', '-batch', '-config', config, '-cert', ca.cert, '-keyfile', ca.key, '-in', csr, '-out', files.cert,
    '-startdate', dates[0], '-enddate', dates[1], '-notext',
  ]); // prettier-ignore
  return files;
}

/** A date as openssl ca's -startdate and -enddate take it: YYYYMMDDHHMMSSZ. */
function asnTime(date: Date): string {
  return `${date.toISOString().slice(0, 19).replace(/[-T:]/g, '')}Z`;
}

/** The same CA (its name and key) in a new self-signed certificate, as when a CA certificate is renewed. */
export function renewCa(dir: string, ca: TestCa): TestCa {
  const renewed = { ...ca, cert: path.join(dir, `${ca.name}-renewed.crt`) };
  openssl(dir, ['req', '-x509', '-key', ca.key, '-out', renewed.cert, '-subj', `/CN=${ca.name}`, '-days', '3']);
  return renewed;
}

/** A CA certificate signed by `parent`: client certificates it issues chain through it to `parent`. */
export function makeIntermediateCa(dir: string, parent: TestCa, name: string): TestCa {
  return { name, ...issue(dir, parent, name, { ca: true, file: name }) };
}

/** A server certificate for the address tests connect to. */
export function issueServer(dir: string, ca: TestCa, options: Omit<IssueOptions, 'san'> = {}): CertificateFiles {
  return issue(dir, ca, 'localhost', { ...options, san: ['DNS:localhost', 'IP:127.0.0.1'] });
}

export const read = (file: string): Buffer => readFileSync(file);

/** The fingerprint of the certificate a brand-new TLS connection to `address` is shown. */
export function servedFingerprint(address: string, ca: Buffer): Promise<string> {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, ca, ALPNProtocols: ['h2'], servername: 'localhost' }, () => {
      resolve(socket.getPeerCertificate().fingerprint256);
      socket.destroy();
    });
    socket.once('error', reject);
  });
}

/**
 * Server TLS whose certificates can be replaced while serving (rotation on
 * SIGHUP). grpc-js fixes ServerCredentials.createSsl at bind time, but its
 * certificate-provider credentials call setSecureContext on the listening
 * server when a provider pushes new material: connections made afterwards
 * get the new certificate, open connections keep theirs and are not dropped.
 *
 * Material is checked before it is pushed: grpc-js answers a secure context
 * that fails to build by dropping every new connection, so bad material must
 * never reach it.
 */
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { experimental, type ServerCredentials } from '@grpc/grpc-js';

/** PEM bytes, as read from the files the operator named. */
export interface TlsMaterial {
  /** The server's certificate chain, leaf first. */
  cert: Buffer;
  key: Buffer;
  /** CA certificates a client certificate must chain to (mutual TLS). */
  clientCa?: Buffer;
}

export interface RotatingTlsCredentials {
  credentials: ServerCredentials;
  /** Serves `material` to new connections; throws (and keeps the current material) if it does not build a TLS context. */
  rotate(material: TlsMaterial): void;
}

/** Mutual TLS is decided once, by whether the first material has a client CA; rotation cannot switch it on or off. */
export function createRotatingTlsCredentials(initial: TlsMaterial): RotatingTlsCredentials {
  const mutual = initial.clientCa !== undefined;
  checkMaterial(initial, mutual);
  const provider = new PushedCertificateProvider(initial);
  // The first argument is the identity provider and the second the CA provider (whatever
  // the parameter names in grpc-js's typings say); the CA provider turns on requestCert.
  const credentials = experimental.createCertificateProviderServerCredentials(provider, mutual ? provider : null, mutual);
  return {
    credentials,
    rotate: (material) => {
      checkMaterial(material, mutual);
      provider.push(material);
    },
  };
}

function checkMaterial(material: TlsMaterial, mutual: boolean): void {
  if (mutual !== (material.clientCa !== undefined)) {
    throw new Error(mutual ? 'mutual TLS needs a client CA' : 'a client CA cannot be added without a restart');
  }
  const options: SecureContextOptions = { cert: material.cert, key: material.key, ca: material.clientCa };
  createSecureContext(options);
}

/** Hands grpc-js whatever material was pushed last; new listeners get it on the next tick, as grpc-js's own providers do. */
class PushedCertificateProvider implements experimental.CertificateProvider {
  private readonly caListeners = new Set<experimental.CaCertificateUpdateListener>();
  private readonly identityListeners = new Set<experimental.IdentityCertificateUpdateListener>();

  constructor(private material: TlsMaterial) {}

  push(material: TlsMaterial): void {
    this.material = material;
    for (const listener of this.identityListeners) listener(this.identity());
    for (const listener of this.caListeners) listener(this.ca());
  }

  addCaCertificateListener(listener: experimental.CaCertificateUpdateListener): void {
    this.caListeners.add(listener);
    process.nextTick(() => listener(this.ca()));
  }

  removeCaCertificateListener(listener: experimental.CaCertificateUpdateListener): void {
    this.caListeners.delete(listener);
  }

  addIdentityCertificateListener(listener: experimental.IdentityCertificateUpdateListener): void {
    this.identityListeners.add(listener);
    process.nextTick(() => listener(this.identity()));
  }

  removeIdentityCertificateListener(listener: experimental.IdentityCertificateUpdateListener): void {
    this.identityListeners.delete(listener);
  }

  private identity(): experimental.IdentityCertificateUpdate {
    return { certificate: this.material.cert, privateKey: this.material.key };
  }

  private ca(): experimental.CaCertificateUpdate | null {
    return this.material.clientCa === undefined ? null : { caCertificate: this.material.clientCa };
  }
}

/**
 * The safe default: a server reachable from other machines must use TLS and
 * must know who its callers are (an auth file, or client certificates). On
 * loopback anything goes, so the README's plaintext commands work; elsewhere
 * only --insecure, said out loud, allows less.
 */
import { isIPv4 } from 'node:net';

export interface ListenPolicyInput {
  listen: string;
  tls: boolean;
  /** An auth file, or --tls-client-ca (every caller then proves who it is). */
  callersIdentified: boolean;
  insecure: boolean;
}

/** True for 127.0.0.0/8, ::1 and "localhost"; any other name or address may be reachable from elsewhere. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  const v4 = /^::ffff:(.+)$/i.exec(bare)?.[1] ?? bare;
  if (isIPv4(v4)) return v4.startsWith('127.');
  return bare === '::1' || bare.toLowerCase() === 'localhost';
}

/** Why the server must not start as configured (one line), or undefined if it may. */
export function listenPolicyProblem({ listen, tls, callersIdentified, insecure }: ListenPolicyInput): string | undefined {
  const host = listen.slice(0, listen.lastIndexOf(':'));
  if (insecure || isLoopbackHost(host)) return undefined;
  if (!tls) {
    return `refusing to serve plaintext on ${listen}, which is not a loopback address: give --tls-cert and --tls-key (docs/security.md), or pass --insecure to serve plaintext knowingly`;
  }
  if (!callersIdentified) {
    return `refusing to let anyone who reaches ${listen} read and write everything: give --auth-file or --tls-client-ca (docs/security.md), or pass --insecure to serve unauthenticated callers knowingly`;
  }
  return undefined;
}

/**
 * The safe default: a server reachable from other machines must use TLS and
 * must know who its callers are (an auth file, or client certificates). On
 * loopback anything goes, so the README's plaintext commands work; elsewhere
 * only --insecure, said out loud, allows less.
 */
import { isLoopbackHost } from '@kv/client/wire';

export { isLoopbackHost };

export interface ListenPolicyInput {
  listen: string;
  tls: boolean;
  /** An auth file, or --tls-client-ca (every caller then proves who it is). */
  callersIdentified: boolean;
  insecure: boolean;
}

/** Why the server must not start as configured (one line), or undefined if it may. */
export function listenPolicyProblem({ listen, tls, callersIdentified, insecure }: ListenPolicyInput): string | undefined {
  const host = listen.slice(0, listen.lastIndexOf(':'));
  if (insecure || isLoopbackHost(host)) return undefined;
  if (!tls) {
    return `refusing to serve plaintext on ${listen}, which is not a loopback address (as kv reads one: 127.x.x.x, [::1] or localhost, written in full): give --tls-cert and --tls-key (docs/security.md), or pass --insecure to serve plaintext knowingly`;
  }
  if (!callersIdentified) {
    return `refusing to let anyone who reaches ${listen} read and write everything: give --auth-file or --tls-client-ca (docs/security.md), or pass --insecure to serve unauthenticated callers knowingly`;
  }
  return undefined;
}

/**
 * Whether an HTTP request's Host (or :authority) names a loopback host. A
 * port on a loopback address answers only such requests: a web page from
 * elsewhere reaches it through DNS rebinding (its own name resolving to
 * 127.0.0.1), as the same origin, and its requests then carry its name.
 */
export function isLoopbackHostHeader(header: string | string[] | undefined): boolean {
  return typeof header === 'string' && isLoopbackHost(header.replace(/:\d+$/, ''));
}

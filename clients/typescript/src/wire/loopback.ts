/**
 * What counts as loopback, where plaintext is fine: one rule for the SDK,
 * kvctl and the server (its --listen, its HTTP port's Host check, its etcd
 * endpoints).
 */
import { isIPv4 } from 'node:net';

/**
 * Whether a server address keeps its traffic on this machine, where
 * plaintext is fine: a unix socket, localhost, ::1 or 127.0.0.0/8 (as
 * kv-server decides for its own --listen), with or without grpc-js's dns:,
 * ipv4: or ipv6: scheme (every address of an ipv4:/ipv6: list). Anything
 * else, or anything this cannot read, is not: KvClient then sends nothing
 * in plaintext without `insecure: true`, nor kvctl without --insecure.
 */
export function isLoopbackAddress(address: string): boolean {
  if (/^unix(-abstract)?:/.test(address)) return true;
  // A URL (http://host:port) is not a gRPC target; grpc-js would take "http" for a host.
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(address)?.[1];
  if (scheme !== undefined && !/^(dns|ipv4|ipv6)$/i.test(scheme)) return false;
  const list = /^(ipv4|ipv6):/i.test(address);
  const targets = address.replace(/^(dns|ipv4|ipv6):(\/\/[^/]*\/)?/i, '');
  return (list ? targets.split(',') : [targets]).every((target) => isLoopbackHost(targetHost(target)));
}

/** The host of "host:port", "[v6]:port", "host" or a bare IPv6 address. */
function targetHost(target: string): string {
  const bracketed = /^\[([^\]]*)\](?::.*)?$/.exec(target);
  if (bracketed !== null) return bracketed[1];
  // Two colons or more without brackets: an IPv6 address without a port.
  return target.indexOf(':') === target.lastIndexOf(':') ? target.split(':')[0] : target;
}

/**
 * True for 127.0.0.0/8 (bare or IPv4-mapped), ::1 (bracketed or not) and
 * "localhost"; any other name or address may be reachable from elsewhere.
 */
export function isLoopbackHost(host: string): boolean {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  // An IPv4 address, not just its look: "127.999.0.1" would go to a DNS lookup, and from there anywhere.
  const v4 = /^::ffff:(.+)$/i.exec(bare)?.[1] ?? bare;
  if (isIPv4(v4)) return v4.startsWith('127.');
  // IPv4-mapped 127.0.0.0/8 as a URL writes it: ::ffff:7f00:1.
  if (/^::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}$/i.test(bare)) return true;
  return bare === '::1' || bare.toLowerCase() === 'localhost';
}

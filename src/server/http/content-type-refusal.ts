/**
 * The line a call with a content type connect does not take for its method
 * is answered (415), saying what to send instead: a unary method's content
 * type sent to a stream, or a stream's to a unary method, is named as such,
 * not as a protocol this port does not speak. And a call that sent its
 * content type more than once, with different values (400).
 */
import type { UniversalHandler } from '@connectrpc/connect/protocol';
import { headerLines } from './header-lines';

/** The content types connect takes for an RPC (connect-es's protocol-connect and protocol-grpc-web content-type.ts). */
export function contentTypes(handler: UniversalHandler): { connect: string[]; grpcWeb: string[] } {
  const grpcWeb = ['application/grpc-web+json', 'application/grpc-web+proto'];
  if (handler.method.methodKind === 'unary') return { connect: ['application/json', 'application/proto'], grpcWeb };
  return { connect: ['application/connect+json', 'application/connect+proto'], grpcWeb };
}

const STREAM_KINDS: Record<string, string> = { server_streaming: 'a server stream', bidi_streaming: 'a bidirectional stream' };

/**
 * Why `sent` (the request's content-type header) is refused for `handler`'s
 * method, and what it takes; `streams` names the methods that are streams.
 */
export function contentTypeRefusal(sent: string | undefined, handler: UniversalHandler, streams: string[]): string {
  const name = handler.method.name;
  const unary = handler.method.methodKind === 'unary';
  const accepted = contentTypes(handler);
  const takes = `${name} takes ${accepted.connect.join(' or ')} (Connect), or ${accepted.grpcWeb.join(' or ')} (gRPC-Web)`;
  if (sent === undefined || sent.trim() === '') return `a call needs a content-type: ${takes}`;
  const mediaType = sent.split(';', 1)[0].trim().toLowerCase();
  const instead = `send ${accepted.connect[0]} (or ${accepted.connect[1]}; gRPC-Web: ${accepted.grpcWeb.join(' or ')})`;
  if (unary && mediaType.startsWith('application/connect+')) {
    return `content-type ${sent} is for streaming methods (${streams.join(', ')}): ${name} is unary; ${instead}`;
  }
  if (!unary && (mediaType === 'application/json' || mediaType === 'application/proto')) {
    const kind = STREAM_KINDS[handler.method.methodKind] ?? 'a stream';
    return `content-type ${sent} is for unary methods: ${name} is ${kind}; ${instead}, with its messages framed (see README, "Over HTTP")`;
  }
  // One of the types taken, with a parameter connect does not take (a JSON one may say charset=utf-8 alone).
  if ([...accepted.connect, ...accepted.grpcWeb, 'application/grpc-web'].includes(mediaType)) {
    return mediaType.endsWith('json')
      ? `content-type ${sent} is not taken as written: send ${mediaType}, or ${mediaType}; charset=utf-8 (JSON is read as UTF-8 only)`
      : `content-type ${sent} is not taken as written: send ${mediaType} alone, without parameters`;
  }
  if (mediaType === 'application/x-www-form-urlencoded') {
    return `content-type ${sent}, which curl -d sends unless told otherwise, is not one this port takes (curl: -H 'content-type: ${accepted.connect[0]}'): ${takes}`;
  }
  if (mediaType.startsWith('application/grpc-web-text')) {
    return `content-type ${sent} is gRPC-Web's text mode, which this port does not serve: ${takes} (grpc-web clients: mode=grpcweb)`;
  }
  return `content-type ${sent} is not one this port takes: ${takes}`;
}

/**
 * The line a call that sent content-type in more than one line, with
 * different values, is answered (400), or undefined. Node keeps the first
 * line (HTTP/1.1 and HTTP/2 alike) and drops the others unsaid, so a body
 * sent as application/proto with a stray application/json line before it
 * was read as JSON; every line is in `rawHeaders`.
 */
export function contentTypeRepeated(rawHeaders: readonly string[]): string | undefined {
  const lines = headerLines(rawHeaders, 'content-type').map((line) => line.trim());
  // Media types and their parameter names are case-insensitive, and spaces around ';' do not count (RFC 9110, 8.3.1).
  const same = (a: string, b: string): boolean => a.replace(/\s+/g, '').toLowerCase() === b.replace(/\s+/g, '').toLowerCase();
  if (lines.every((line) => same(line, lines[0]))) return undefined;
  return `content-type was sent more than once, with different values (${lines.join(', ')}): send it once`;
}

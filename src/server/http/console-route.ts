/**
 * Serves the web console's static files on the HTTP port, for whatever path
 * is not an RPC. The files come from a lookup the caller hands in (the
 * server layer never reads files). The console keeps what it shows in the
 * address's fragment (#prefix=...&key=...), never in the path: a path with
 * no file of its own is 404, not the console's page.
 */
import type { ConnectNodeAdapterOptions } from '@connectrpc/connect-node';

type NodeHandler = NonNullable<ConnectNodeAdapterOptions['fallback']>;

export interface ConsoleAsset {
  body: Buffer;
  contentType: string;
}

/** The console file at a URL path ("/", "/assets/index-3f2a.js"), or undefined. */
export type ConsoleAssets = (urlPath: string) => ConsoleAsset | undefined;

/**
 * The console talks only to its own origin: scripts, styles and fetches from
 * 'self', nothing inline, no framing (clickjacking), no referrer.
 */
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

export function consoleRoute(assets: ConsoleAssets | undefined): NodeHandler {
  return (request, response) => {
    const send = (status: number, headers: Record<string, string>, body: Buffer | string): void => {
      response.writeHead(status, { ...SECURITY_HEADERS, ...headers });
      if (request.method === 'HEAD') response.end();
      else response.end(body);
    };
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      return send(404, { 'content-type': 'text/plain; charset=utf-8' }, 'not found: RPCs are POST /kv.v1.KeyValueService/<Method>\n');
    }
    if (assets === undefined) {
      return send(404, { 'content-type': 'text/plain; charset=utf-8' }, 'the web console is not built: run npm run build\n');
    }
    let urlPath: string;
    try {
      urlPath = new URL(request.url ?? '/', 'http://console').pathname;
    } catch {
      return send(400, { 'content-type': 'text/plain; charset=utf-8' }, 'bad request: the path is not one a URL can hold\n');
    }
    const asset = assets(urlPath) ?? (urlPath === '/' ? assets('/index.html') : undefined);
    if (asset === undefined) return send(404, { 'content-type': 'text/plain; charset=utf-8' }, 'not found\n');
    // Vite names built assets by content hash, so they never change; index.html must be fetched each time.
    const caching = urlPath.startsWith('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache';
    send(200, { 'content-type': asset.contentType, 'cache-control': caching }, asset.body);
  };
}

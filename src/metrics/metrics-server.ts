/**
 * The HTTP listener of --metrics-listen: /metrics (Prometheus text format),
 * /healthz (liveness: the process answers) and /readyz (readiness: the
 * store is open and takes writes, and the server is not draining), for load
 * balancers and orchestrators that do not speak gRPC health. Plain HTTP:
 * nothing here shows a key, a value or a credential. On a loopback address
 * it answers only requests addressed to loopback (421 otherwise).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../logger';
import { isLoopbackHost, isLoopbackHostHeader } from '../security/listen-policy';

/** A prom-client Registry, or the supervisor's sum of its processes' registries (--workers N). */
export interface MetricsSource {
  metrics(): Promise<string>;
  readonly contentType: string;
}

export interface MetricsServerOptions {
  registry: MetricsSource;
  /** Why the server is not ready (one line), or undefined when it is. */
  notReady: () => string | undefined | Promise<string | undefined>;
  logger: Logger;
}

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

export async function startMetricsServer(address: string, { registry, notReady, logger }: MetricsServerOptions): Promise<MetricsServer> {
  const separator = address.lastIndexOf(':');
  const host = address.slice(0, separator).replace(/^\[(.*)\]$/, '$1');
  const port = Number(address.slice(separator + 1));
  // On loopback, as the HTTP port: only requests addressed to loopback (no web page through DNS rebinding).
  const loopbackOnly = isLoopbackHost(host);
  const server = http.createServer((request, response) => {
    const reply = (code: number, body: string, type = 'text/plain; charset=utf-8'): void => {
      response.writeHead(code, { 'content-type': type, 'cache-control': 'no-store' });
      response.end(request.method === 'HEAD' ? undefined : body);
    };
    // A request with no Host at all (HTTP/1.0: a load balancer's health check) is no browser's: DNS rebinding needs one.
    if (loopbackOnly && request.headers.host !== undefined && !isLoopbackHostHeader(request.headers.host)) {
      return reply(
        421,
        'this server listens on a loopback address and answers only requests addressed to one (Host: localhost, 127.0.0.1 or [::1])\n',
      );
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') return reply(405, 'only GET and HEAD\n');
    const route = (request.url ?? '/').split('?')[0];
    if (route === '/healthz') return reply(200, 'ok\n');
    if (route === '/readyz') {
      Promise.resolve(notReady()).then(
        (reason) => (reason === undefined ? reply(200, 'ready\n') : reply(503, `not ready: ${reason}\n`)),
        (err: unknown) => {
          logger.error({ err }, 'could not tell readiness');
          reply(500, 'could not tell readiness (logged by the server)\n');
        },
      );
      return;
    }
    if (route === '/metrics') {
      registry.metrics().then(
        (text) => reply(200, text, registry.contentType),
        (err: unknown) => {
          logger.error({ err }, 'could not collect metrics');
          reply(500, 'could not collect metrics (logged by the server)\n');
        },
      );
      return;
    }
    reply(404, 'not found: try /metrics, /healthz or /readyz\n');
  });
  // Scrapers and probes send one request per connection or keep one alive; neither should hold shutdown.
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

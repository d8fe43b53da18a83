import { readFileSync } from 'node:fs';
import { credentials, KvClient, type KvClientOptions } from '@kv/client';
import { CliError } from './cli-error';
import type { GlobalOptions } from './global-options';

/**
 * The SDK client for the global options: every endpoint (frontends of one
 * deployment), which the SDK uses in turn, failing reads over to the next.
 */
export function connect(options: GlobalOptions): KvClient {
  const tls = options.tlsCa !== undefined || options.tlsCert !== undefined;
  for (const endpoint of options.endpoints) {
    if (!tls && !options.insecure && !isLoopback(endpoint)) {
      throw new CliError(`${endpoint} is not a loopback address: give --tls-ca (TLS), or --insecure to send in plaintext`);
    }
  }
  const clientOptions: KvClientOptions = { deadlineMs: options.timeoutMs, token: options.token };
  if (tls) {
    clientOptions.credentials = credentials.createSsl(
      readPem(options.tlsCa, '--tls-ca'),
      readPem(options.tlsKey, '--tls-key'),
      readPem(options.tlsCert, '--tls-cert'),
    );
  }
  try {
    return new KvClient(options.endpoints, clientOptions);
  } catch (error) {
    throw new CliError(`--token: ${(error as Error).message}`);
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

/** Whether traffic to endpoint stays on this machine (where plaintext is fine). */
export function isLoopback(endpoint: string): boolean {
  if (endpoint.startsWith('unix:')) return true;
  const target = endpoint.replace(/^(dns|ipv4|ipv6):(\/\/[^/]*\/)?/, '');
  const host = target.startsWith('[') ? target.slice(1, target.indexOf(']')) : target.slice(0, target.lastIndexOf(':'));
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

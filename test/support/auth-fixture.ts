/**
 * Auth files for tests: roles as in docs/security.md, tokens minted and
 * hashed by the server's own code, written to a real file the server reads.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { credentials, Metadata, status, type ChannelCredentials, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import { errorReasonToJSON, KeyValueServiceClient, type KeepAliveResponse, type WatchRequest } from '../../src/gen/kv/v1/kv';
import { hashToken, mintToken } from '../../src/auth/token';

export interface AuthFixture {
  file: string;
  /** The token minted for each name in `tokens`. */
  tokens: Record<string, string>;
}

export interface AuthFileSpec {
  roles: Record<string, { prefix: string; permission: 'read' | 'write' | 'admin' }[]>;
  /** token name -> role */
  tokens?: Record<string, string>;
  certificates?: ({ cn: string; role: string } | { san: string; role: string })[];
}

export function writeAuthFile(dir: string, spec: AuthFileSpec, name = 'auth.json'): AuthFixture {
  const tokens: Record<string, string> = {};
  const entries = Object.entries(spec.tokens ?? {}).map(([tokenName, role]) => {
    tokens[tokenName] = mintToken();
    return { name: tokenName, role, sha256: hashToken(tokens[tokenName]).toString('hex') };
  });
  const file = path.join(dir, name);
  writeFileSync(file, JSON.stringify({ roles: spec.roles, tokens: entries, certificates: spec.certificates ?? [] }, null, 2));
  return { file, tokens };
}

export function bearer(token: string | undefined): Metadata {
  const metadata = new Metadata();
  if (token !== undefined) metadata.set('authorization', `Bearer ${token}`);
  return metadata;
}

/** How a call ended: its status code name ("OK", "PERMISSION_DENIED", ...), message and trailers. */
export interface Outcome {
  code: string;
  details: string;
  trailers: Record<string, string>;
}

type UnaryMethod = (
  request: never,
  metadata: Metadata,
  options: { deadline: Date },
  callback: (error: ServiceError | null) => void,
) => unknown;

/** Calls one unary kv.v1 method and reports how it ended, without throwing. */
export function outcomeOf(client: KeyValueServiceClient, method: UnaryMethod, request: object, metadata: Metadata): Promise<Outcome> {
  return new Promise((resolve) => {
    method.call(client, request as never, metadata, { deadline: new Date(Date.now() + 10_000) }, (error) => {
      if (error === null) return resolve({ code: 'OK', details: '', trailers: {} });
      const trailers: Record<string, string> = {};
      for (const [key, value] of Object.entries(error.metadata?.getMap() ?? {})) trailers[key] = String(value);
      resolve({ code: status[error.code], details: error.details, trailers });
    });
  });
}

/** Opens a Watch and reports how it started: OK once the first message arrives (then cancels), or the error it ended with. */
export function watchOutcomeOf(client: KeyValueServiceClient, request: Partial<WatchRequest>, metadata: Metadata): Promise<Outcome> {
  return streamOutcomeOf(
    client.watch({ startRevision: 0, prevEntry: false, fragment: false, ...request }, metadata, {
      deadline: new Date(Date.now() + 10_000),
    }),
  );
}

/** A server stream's outcome: OK at its first message (then it is cancelled), or its error. */
export function streamOutcomeOf(stream: ClientReadableStream<unknown>): Promise<Outcome> {
  return new Promise((resolve) => {
    stream.once('data', () => {
      resolve({ code: 'OK', details: '', trailers: {} });
      stream.cancel();
    });
    stream.once('error', (error: ServiceError) => {
      const trailers: Record<string, string> = {};
      for (const [key, value] of Object.entries(error.metadata?.getMap() ?? {})) trailers[key] = String(value);
      resolve({ code: status[error.code], details: error.details, trailers });
    });
  });
}

/**
 * A KeepAlive of lease `id` on a stream of its own: OK once it is refreshed, the refusal the answer carries (its
 * code, message and kv-reason, as a failed call's), or the error the stream ended with. The stream is then cancelled.
 */
export function keepAliveOutcomeOf(client: KeyValueServiceClient, id: number, metadata: Metadata): Promise<Outcome> {
  const stream = client.keepAlive(metadata, { deadline: new Date(Date.now() + 10_000) });
  stream.write({ id });
  return new Promise((resolve) => {
    stream.once('data', ({ error }: KeepAliveResponse) => {
      resolve(
        error === undefined
          ? { code: 'OK', details: '', trailers: {} }
          : { code: status[error.code], details: error.message, trailers: { 'kv-reason': errorReasonToJSON(error.reason) } },
      );
      stream.cancel();
    });
    stream.once('error', (error: ServiceError) => {
      const trailers: Record<string, string> = {};
      for (const [key, value] of Object.entries(error.metadata?.getMap() ?? {})) trailers[key] = String(value);
      resolve({ code: status[error.code], details: error.details, trailers });
    });
  });
}

export function kvClient(address: string, channelCredentials: ChannelCredentials = credentials.createInsecure()): KeyValueServiceClient {
  return new KeyValueServiceClient(address, channelCredentials);
}

/**
 * A gRPC client pointed at the HTTP port (--http-listen) instead of the gRPC
 * one: it gets a gRPC status it prints, saying this is kv's HTTP port and
 * which port serves gRPC, with kv-reason NOT_GRPC; not an HTTP 415 or 404
 * with a text body that gRPC clients do not show (grpcurl printed "server
 * closed the stream without sending trailers", and for `list` "server does
 * not support the reflection API").
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Client, credentials, Metadata, type ServiceError, status } from '@grpc/grpc-js';
import { testWithTool } from '../support/find-tool';
import { REPO_ROOT, startServer, type RunningServer } from '../support/server-process';

let server: RunningServer;
let client: Client;
let message: string;

beforeAll(async () => {
  server = await startServer({ args: ['--http-listen', '127.0.0.1:0'] });
  client = new Client(server.httpAddress!, credentials.createInsecure());
  const grpcPort = server.address.split(':')[1];
  message = `this is kv-server's HTTP port (Connect, gRPC-Web and the web console), not its gRPC port: send gRPC calls to its --listen address (port ${grpcPort})`;
});

afterAll(async () => {
  client.close();
  expect(await server.stop()).toBe(0);
});

const bytes = (value: Buffer): Buffer => value;

/** What a gRPC status comes to, as a client sees it. */
function seen(error: ServiceError): { code: status; details: string; reason: unknown } {
  return { code: error.code, details: error.details, reason: error.metadata.get('kv-reason')[0] };
}

test('a unary call (Get) gets UNIMPLEMENTED naming the gRPC port, with kv-reason NOT_GRPC', async () => {
  const error = await new Promise<ServiceError>((resolve, reject) =>
    client.makeUnaryRequest('/kv.v1.KeyValueService/Get', bytes, bytes, Buffer.from('\n\x01a'), new Metadata(), (failure) =>
      failure === null ? reject(new Error('the call succeeded')) : resolve(failure),
    ),
  );
  expect(seen(error)).toEqual({ code: status.UNIMPLEMENTED, details: message, reason: 'NOT_GRPC' });
});

test('a server stream (Watch) and health get the same', async () => {
  for (const path of ['/kv.v1.KeyValueService/Watch', '/grpc.health.v1.Health/Watch']) {
    const error = await new Promise<ServiceError>((resolve, reject) => {
      const call = client.makeServerStreamRequest(path, bytes, bytes, Buffer.alloc(0), new Metadata());
      call.on('data', () => reject(new Error(`${path} sent a message`)));
      call.on('error', resolve);
      call.on('end', () => reject(new Error(`${path} ended without an error`)));
    });
    expect([path, seen(error)]).toEqual([path, { code: status.UNIMPLEMENTED, details: message, reason: 'NOT_GRPC' }]);
  }
});

test('reflection, its stream left open as grpcurl leaves it, gets the same, as FAILED_PRECONDITION', async () => {
  // UNIMPLEMENTED there reads as "this server has no reflection", and gRPC tools print only that.
  const error = await new Promise<ServiceError>((resolve) => {
    const call = client.makeBidiStreamRequest('/grpc.reflection.v1.ServerReflection/ServerReflectionInfo', bytes, bytes, new Metadata());
    call.on('error', resolve);
    call.on('data', () => undefined);
    call.write(Buffer.from('\x3a\x00', 'latin1')); // list_services: ""
  });
  expect(seen(error)).toEqual({ code: status.FAILED_PRECONDITION, details: message, reason: 'NOT_GRPC' });
});

test('over HTTP/1.1 too, in headers, and the port goes on serving Connect', async () => {
  const response = await fetch(`http://${server.httpAddress}/kv.v1.KeyValueService/Get`, {
    method: 'POST',
    headers: { 'content-type': 'application/grpc+proto' },
    body: Buffer.from([0, 0, 0, 0, 0]),
  });
  expect(response.status).toBe(200);
  expect([
    response.headers.get('grpc-status'),
    decodeURI(response.headers.get('grpc-message')!),
    response.headers.get('kv-reason'),
  ]).toEqual(['12', message, 'NOT_GRPC']);
  const connect = await fetch(`http://${server.httpAddress}/kv.v1.KeyValueService/Set`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"key": "still", "value": 1}',
  });
  expect(connect.status).toBe(200);
});

describe('grpcurl', () => {
  const { tool: grpcurl, test: withGrpcurl } = testWithTool('grpcurl');
  const run = async (args: string[]): Promise<string> => {
    const done = await promisify(execFile)(grpcurl!, args, { cwd: REPO_ROOT }).catch(
      (failed: { stdout: string; stderr: string }) => failed,
    );
    return `${done.stdout}${done.stderr}`;
  };

  withGrpcurl('list prints the message, not "server does not support the reflection API"', async () => {
    expect(await run(['-plaintext', server.httpAddress!, 'list'])).toBe(
      `Failed to list services: rpc error: code = FailedPrecondition desc = ${message}\n`,
    );
  });

  withGrpcurl('a call prints Unimplemented and the message, not "server closed the stream without sending trailers"', async () => {
    const args = ['-plaintext', '-import-path', 'proto', '-proto', 'kv/v1/kv.proto', '-d', '{"key": "a"}'];
    expect(await run([...args, server.httpAddress!, 'kv.v1.KeyValueService/Get'])).toBe(
      `ERROR:\n  Code: Unimplemented\n  Message: ${message}\n`,
    );
  });
});

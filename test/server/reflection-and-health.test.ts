import path from 'node:path';
import {
  credentials,
  loadPackageDefinition,
  type ClientDuplexStream,
  type ClientReadableStream,
  type GrpcObject,
  type ServiceClientConstructor,
  type ServiceError,
  status,
} from '@grpc/grpc-js';
import { load } from '@grpc/proto-loader';
import { FileDescriptorProto } from 'protobufjs/ext/descriptor';
import { startServer, REPO_ROOT, type RunningServer } from '../support/server-process';
import { healthClient, healthOf } from '../support/health';

let server: RunningServer;

beforeAll(async () => {
  server = await startServer();
});

afterAll(async () => {
  await server.stop();
});

async function clientFor(protoFile: string, serviceName: string): Promise<InstanceType<ServiceClientConstructor>> {
  const definition = await load(protoFile, { keepCase: true, longs: Number, enums: String, defaults: true });
  let node: unknown = loadPackageDefinition(definition);
  for (const part of serviceName.split('.')) node = (node as GrpcObject)[part];
  const Client = node as ServiceClientConstructor;
  return new Client(server.address, credentials.createInsecure());
}

interface ReflectionResponse {
  list_services_response?: { service: { name: string }[] };
  file_descriptor_response?: { file_descriptor_proto: Buffer[] };
  error_response?: { error_message: string };
}

async function reflect(version: 'v1' | 'v1alpha', request: Record<string, string>): Promise<ReflectionResponse> {
  const proto = path.join(REPO_ROOT, 'node_modules/@grpc/reflection/build/proto/grpc/reflection', version, 'reflection.proto');
  const client = await clientFor(proto, `grpc.reflection.${version}.ServerReflection`);
  const stream = (client as unknown as { ServerReflectionInfo(): ClientDuplexStream<object, ReflectionResponse> }).ServerReflectionInfo();
  const response = await new Promise<ReflectionResponse>((resolve, reject) => {
    stream.once('data', resolve);
    stream.once('error', reject);
    stream.write(request);
  });
  stream.end();
  client.close();
  return response;
}

test.each(['v1', 'v1alpha'] as const)('reflection %s lists the service', async (version) => {
  const response = await reflect(version, { list_services: '' });
  expect(response.list_services_response?.service.map((s) => s.name)).toContain('kv.v1.KeyValueService');
});

test.each(['v1', 'v1alpha'] as const)('reflection %s describes the service with google.protobuf.Value resolvable', async (version) => {
  const response = await reflect(version, { file_containing_symbol: 'kv.v1.KeyValueService' });
  const files = (response.file_descriptor_response?.file_descriptor_proto ?? []).map(
    (bytes) => FileDescriptorProto.decode(bytes) as unknown as { name: string; dependency: string[] },
  );
  const kvFile = files.find((f) => f.name === 'kv/v1/kv.proto');
  expect(kvFile?.dependency).toContain('google/protobuf/struct.proto');
  const structFile = await reflect(version, { file_by_filename: 'google/protobuf/struct.proto' });
  expect(structFile.error_response).toBeUndefined();
  const valueFile = await reflect(version, { file_containing_symbol: 'google.protobuf.Value' });
  const names = (valueFile.file_descriptor_response?.file_descriptor_proto ?? []).map(
    (bytes) => (FileDescriptorProto.decode(bytes) as unknown as { name: string }).name,
  );
  expect(names).toContain('google/protobuf/struct.proto');
});

test('health reports SERVING for the server and for kv.v1.KeyValueService', async () => {
  expect(await healthOf(server.address, '')).toBe('SERVING');
  expect(await healthOf(server.address, 'kv.v1.KeyValueService')).toBe('SERVING');
});

test('on SIGTERM health watchers see NOT_SERVING and their streams end, so they do not hold up the shutdown', async () => {
  const draining = await startServer({ args: ['--shutdown-grace-ms', '60000'] });
  const client = healthClient(draining.address);
  const watch = (client as unknown as { Watch(r: object): ClientReadableStream<{ status: string }> }).Watch({
    service: 'kv.v1.KeyValueService',
  });
  const seen: string[] = [];
  let exit: Promise<number | null> | undefined;
  const ended = new Promise<void>((resolve, reject) => {
    watch.on('data', (update) => {
      seen.push(update.status);
      if (update.status === 'SERVING') exit = draining.stop('SIGTERM');
    });
    watch.on('end', resolve);
    watch.on('error', reject);
  });
  await ended;
  expect(seen).toEqual(['SERVING', 'NOT_SERVING']);
  expect(await exit).toBe(0);
  expect(draining.output()).not.toMatch(/grace period over/);
  client.close();
});

test('health answers as grpc.health.v1 says for a service it does not have, and lists the two it has', async () => {
  const client = healthClient(server.address) as unknown as {
    Check(r: object, cb: (e: ServiceError | null) => void): void;
    Watch(r: object): ClientReadableStream<{ status: string }>;
    List(r: object, cb: (e: ServiceError | null, r: { statuses: Record<string, { status: string }> }) => void): void;
    close(): void;
  };
  const checked = await new Promise<ServiceError | null>((resolve) => client.Check({ service: 'no.such.Service' }, resolve));
  expect(checked?.code).toBe(status.NOT_FOUND);
  const watch = client.Watch({ service: 'no.such.Service' });
  const first = await new Promise<{ status: string }>((resolve, reject) => {
    watch.once('data', resolve);
    watch.once('error', reject);
  });
  expect(first.status).toBe('SERVICE_UNKNOWN');
  watch.cancel();
  const listed = await new Promise<Record<string, { status: string }>>((resolve, reject) =>
    client.List({}, (error, response) => (error ? reject(error) : resolve(response.statuses))),
  );
  expect(listed).toEqual({ '': { status: 'SERVING' }, 'kv.v1.KeyValueService': { status: 'SERVING' } });
  client.close();
});

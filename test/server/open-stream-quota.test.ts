/**
 * Health Watch and reflection streams need no credentials and stay open as
 * long as their client wants: one connection may hold at most 16 of them
 * (OPEN_STREAMS_PER_CONNECTION), and a health Watch names a service of at
 * most 1 KiB. Before, one client could hold --max-concurrent-streams of them
 * on each connection, each with its request (a 1 MB service name) in memory.
 */
import path from 'node:path';
import {
  Channel,
  credentials,
  loadPackageDefinition,
  type ClientDuplexStream,
  type ClientReadableStream,
  type GrpcObject,
  type ServiceClientConstructor,
  type ServiceError,
  status,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { OPEN_STREAMS_PER_CONNECTION } from '../../src/server/open-stream-quota';
import { REPO_ROOT, startServer, type RunningServer } from '../support/server-process';
import { pollUntil } from '../support/temp-dirs';

type HealthWatch = ClientReadableStream<{ status: string }>;
interface HealthStub {
  Watch(request: { service: string }): HealthWatch;
  close(): void;
}
interface ReflectionStub {
  ServerReflectionInfo(): ClientDuplexStream<object, object>;
  close(): void;
}

let server: RunningServer;
const channels: Channel[] = [];

beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  for (const channel of channels) channel.close();
  await server.stop();
});

function serviceClient(proto: string, name: string): ServiceClientConstructor {
  let node: unknown = loadPackageDefinition(loadSync(proto, { keepCase: true, enums: String, defaults: true }));
  for (const part of name.split('.')) node = (node as GrpcObject)[part];
  return node as ServiceClientConstructor;
}

const Health = serviceClient(path.join(REPO_ROOT, 'node_modules/grpc-health-check/proto/health/v1/health.proto'), 'grpc.health.v1.Health');
const Reflection = serviceClient(
  path.join(REPO_ROOT, 'node_modules/@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto'),
  'grpc.reflection.v1.ServerReflection',
);

/** Clients over one connection of their own. */
function connection(): { health: HealthStub; reflection: ReflectionStub } {
  const channel = new Channel(server.address, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
  channels.push(channel);
  return {
    health: new Health(server.address, credentials.createInsecure(), { channelOverride: channel }) as unknown as HealthStub,
    reflection: new Reflection(server.address, credentials.createInsecure(), { channelOverride: channel }) as unknown as ReflectionStub,
  };
}

/** A health Watch's first message, or the error that ended it. */
function firstOf(watch: HealthWatch): Promise<{ status: string } | ServiceError> {
  return new Promise((resolve) => {
    watch.once('data', resolve);
    watch.once('error', resolve);
  });
}

test('one connection holds at most 16 health Watch and reflection streams; the next is RESOURCE_EXHAUSTED, another connection has its own', async () => {
  const a = connection();
  const watches: HealthWatch[] = [];
  // Half reflection streams (answered, and left open), half health Watches: they count together.
  const reflections = Array.from({ length: OPEN_STREAMS_PER_CONNECTION / 2 }, () => a.reflection.ServerReflectionInfo());
  for (const stream of reflections) {
    stream.on('error', () => undefined);
    const answered = new Promise((resolve) => stream.once('data', resolve));
    stream.write({ list_services: '' });
    await answered;
  }
  for (let i = 0; i < OPEN_STREAMS_PER_CONNECTION / 2; i++) {
    const watch = a.health.Watch({ service: '' });
    watch.on('error', () => undefined);
    watches.push(watch);
    expect(await firstOf(watch)).toEqual({ status: 'SERVING' });
  }
  const refused = await firstOf(a.health.Watch({ service: '' }));
  expect(refused).toMatchObject({
    code: status.RESOURCE_EXHAUSTED,
    details: `${OPEN_STREAMS_PER_CONNECTION} health Watch and reflection streams are open on this connection already, the most one connection may hold (--max-health-streams-per-connection): end one before opening another health Watch`,
  });
  const reflectionRefused = a.reflection.ServerReflectionInfo();
  const reflectionError = await new Promise<ServiceError>((resolve) => reflectionRefused.once('error', resolve));
  expect(reflectionError.code).toBe(status.RESOURCE_EXHAUSTED);

  // Another connection is not held back by this one.
  const b = connection();
  const other = b.health.Watch({ service: 'kv.v1.KeyValueService' });
  other.on('error', () => undefined);
  expect(await firstOf(other)).toEqual({ status: 'SERVING' });

  // A stream that ends gives its place back.
  watches[0].cancel();
  await pollUntil('a place on the connection again', async () => {
    const again = a.health.Watch({ service: '' });
    again.on('error', () => undefined);
    const first = await firstOf(again);
    again.cancel();
    return 'status' in first && first.status === 'SERVING' ? true : undefined;
  });
  for (const watch of [...watches, other]) watch.cancel();
  for (const stream of reflections) stream.end();
});

test('a health Watch naming a service of more than 1 KiB is INVALID_ARGUMENT, not held open', async () => {
  const { health } = connection();
  const refused = await firstOf(health.Watch({ service: 'x'.repeat(1025) }));
  expect(refused).toMatchObject({ code: status.INVALID_ARGUMENT, details: expect.stringContaining('at most 1024 bytes') });
  const unknown = health.Watch({ service: 'x'.repeat(1024) });
  unknown.on('error', () => undefined);
  expect(await firstOf(unknown)).toEqual({ status: 'SERVICE_UNKNOWN' });
  unknown.cancel();
});

test('--max-health-streams-per-connection sets the cap (0: none): behind a proxy that carries many clients on one connection', async () => {
  const capped = await startServer({ args: ['--max-health-streams-per-connection', '2'] });
  const uncapped = await startServer({ args: ['--max-health-streams-per-connection', '0'] });
  try {
    const on = (address: string): HealthStub => {
      const channel = new Channel(address, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
      channels.push(channel);
      return new Health(address, credentials.createInsecure(), { channelOverride: channel }) as unknown as HealthStub;
    };
    const open = async (health: HealthStub, n: number): Promise<Array<{ status: string } | ServiceError>> => {
      const firsts: Array<{ status: string } | ServiceError> = [];
      for (let i = 0; i < n; i++) {
        const watch = health.Watch({ service: '' });
        watch.on('error', () => undefined);
        firsts.push(await firstOf(watch));
      }
      return firsts;
    };
    const cappedFirsts = await open(on(capped.address), 3);
    expect(cappedFirsts.slice(0, 2)).toEqual([{ status: 'SERVING' }, { status: 'SERVING' }]);
    expect(cappedFirsts[2]).toMatchObject({
      code: status.RESOURCE_EXHAUSTED,
      details: expect.stringContaining('2 health Watch and reflection streams are open on this connection already'),
    });
    expect((cappedFirsts[2] as ServiceError).details).toContain('--max-health-streams-per-connection');
    expect(await open(on(uncapped.address), 40)).toEqual(Array.from({ length: 40 }, () => ({ status: 'SERVING' })));
  } finally {
    await Promise.all([capped.stop(), uncapped.stop()]);
  }
});

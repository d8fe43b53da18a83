import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { MethodDefinition, Server, ServerDuplexStream, ServiceDefinition, UntypedServiceImplementation } from '@grpc/grpc-js';
import type { PackageDefinition } from '@grpc/proto-loader';
import type { ReflectionService } from '@grpc/reflection';
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import type { Logger } from '../logger';
import type { OpenStreams } from './grpc-call';
import type { OpenStreamQuota } from './open-stream-quota';
import { toGrpcStatus } from './to-status';

/**
 * Descriptor sets written by `buf build` (npm run generate): the kv contract
 * with its imports and doc comments, and grpc.health.v1 so that grpcurl can
 * call the health check too.
 */
const DESCRIPTOR_SETS = ['kv.binpb', 'health.binpb'].map((name) => path.resolve(__dirname, '../../src/gen', name));

/** The one method of each reflection version, as @grpc/reflection registers it. */
const REFLECTION_PATHS = [
  '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo',
  '/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo',
];
const METHOD_NAME = 'ServerReflectionInfo';

type ReflectionMethod = { definition: MethodDefinition<unknown, unknown>; handle: (call: ServerDuplexStream<unknown, unknown>) => void };

/**
 * Serves grpc.reflection v1 and v1alpha; each stream is one of `streams`,
 * which shutdown ends.
 *
 * ReflectionService wants a proto-loader PackageDefinition, but proto-loader
 * rebuilds descriptors through protobufjs and loses each file's `dependency`
 * list, so grpcurl cannot resolve google.protobuf.Value. ReflectionService
 * only reads `fileDescriptorProtos` from the definition, so we hand it the
 * files exactly as buf wrote them.
 *
 * Built on the first reflection call, not at start-up: @grpc/reflection
 * loads protobufjs, parses its own .proto files and re-encodes every
 * descriptor, about 0.1 s of CPU that every start-up would pay for a service
 * only tools call. Both services are registered at once, under stand-in
 * definitions that build the real ones when first used. The build is
 * synchronous because grpc-js deserializes a request as it arrives, maybe
 * before the handler has run.
 */
export function addReflection(server: Server, streams: OpenStreams, quota: OpenStreamQuota, logger: Logger): void {
  let methods: Map<string, ReflectionMethod> | undefined;
  const method = (methodPath: string): ReflectionMethod => {
    methods ??= buildReflection();
    const found = methods.get(methodPath);
    if (found === undefined) throw new Error(`@grpc/reflection registered no ${methodPath}`);
    return found;
  };
  for (const methodPath of REFLECTION_PATHS) {
    const standIn: MethodDefinition<unknown, unknown> = {
      path: methodPath,
      requestStream: true,
      responseStream: true,
      requestSerialize: (value) => method(methodPath).definition.requestSerialize(value),
      requestDeserialize: (bytes) => method(methodPath).definition.requestDeserialize(bytes),
      responseSerialize: (value) => method(methodPath).definition.responseSerialize(value),
      responseDeserialize: (bytes) => method(methodPath).definition.responseDeserialize(bytes),
    };
    const service: ServiceDefinition = { [METHOD_NAME]: standIn };
    const implementation: UntypedServiceImplementation = {
      [METHOD_NAME]: (call: ServerDuplexStream<unknown, unknown>) => {
        const place = quota.take(call.getPeer(), 'reflection stream');
        if (typeof place !== 'function') {
          call.emit('error', place);
          return;
        }
        // A reflection stream lasts as long as its client wants (grpcurl keeps one open for its whole run): shutdown
        // ends it as it ends Watch and KeepAlive, or it would hold the drain for the whole grace.
        let open = true;
        const forget = streams.add((error) => {
          if (!open) return;
          open = false;
          forget();
          place();
          call.emit('error', toGrpcStatus(error, logger));
        }, 'open-ended');
        const closed = (): void => {
          open = false;
          forget();
          place();
        };
        call.once('cancelled', closed);
        call.once('finish', closed);
        method(methodPath).handle(call);
      },
    };
    server.addService(service, implementation);
  }
}

/** The reflection services as @grpc/reflection defines and implements them, by method path. */
function buildReflection(): Map<string, ReflectionMethod> {
  const load = createRequire(__filename);
  const reflection = load('@grpc/reflection') as { ReflectionService: typeof ReflectionService };
  const files = DESCRIPTOR_SETS.flatMap((file) => splitDescriptorSet(readFileSync(file)));
  const definition = {
    'kv.v1.descriptors': { format: 'Protocol Buffer 3 DescriptorProto', type: {}, fileDescriptorProtos: files },
  } as unknown as PackageDefinition;
  const methods = new Map<string, ReflectionMethod>();
  new reflection.ReflectionService(definition).addToServer({
    addService: (service: ServiceDefinition, implementation: UntypedServiceImplementation) => {
      for (const [name, definition] of Object.entries(service)) {
        // grpc-js's own lookup: by the name, else by the method's original name.
        const handle = (implementation[name] ?? implementation[definition.originalName ?? '']) as ReflectionMethod['handle'];
        methods.set(definition.path, { definition: definition as MethodDefinition<unknown, unknown>, handle });
      }
    },
  });
  return methods;
}

/** The encoded FileDescriptorProtos of a FileDescriptorSet (field 1, repeated). */
function splitDescriptorSet(bytes: Uint8Array): Buffer[] {
  const reader = new BinaryReader(bytes);
  const files: Buffer[] = [];
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === 1 && wireType === WireType.LengthDelimited) files.push(Buffer.from(reader.bytes()));
    else reader.skip(wireType);
  }
  return files;
}

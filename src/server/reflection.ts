import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Server } from '@grpc/grpc-js';
import type { PackageDefinition } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';

/**
 * Descriptor sets written by `buf build` (npm run generate): the kv contract
 * with its imports and doc comments, and grpc.health.v1 so that grpcurl can
 * call the health check too.
 */
const DESCRIPTOR_SETS = ['kv.binpb', 'health.binpb'].map((name) => path.resolve(__dirname, '../../src/gen', name));

/**
 * Serves grpc.reflection v1 and v1alpha.
 *
 * ReflectionService wants a proto-loader PackageDefinition, but proto-loader
 * rebuilds descriptors through protobufjs and loses each file's `dependency`
 * list, so grpcurl cannot resolve google.protobuf.Value. ReflectionService
 * only reads `fileDescriptorProtos` from the definition, so we hand it the
 * files exactly as buf wrote them.
 */
export function addReflection(server: Server): void {
  const files = DESCRIPTOR_SETS.flatMap((file) => splitDescriptorSet(readFileSync(file)));
  const definition = {
    'kv.v1.descriptors': { format: 'Protocol Buffer 3 DescriptorProto', type: {}, fileDescriptorProtos: files },
  } as unknown as PackageDefinition;
  new ReflectionService(definition).addToServer(server);
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

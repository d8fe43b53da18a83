/**
 * The ceiling of the Node gRPC stack on this machine: a grpc-js server whose
 * unary calls return their request unchanged. Messages pass through as raw
 * bytes (identity codecs), so what it costs is exactly what grpc-js and
 * HTTP/2 cost per call, with no protobuf work at all; kv can only approach it.
 *
 * Usage: node --import tsx bench/echo-server.ts [--listen 127.0.0.1:0]
 * Prints "echo-server listening on HOST:PORT" when ready; SIGTERM stops it.
 */
import {
  Server,
  ServerCredentials,
  type MethodDefinition,
  type ServiceDefinition,
  type UntypedServiceImplementation,
  type handleUnaryCall,
} from '@grpc/grpc-js';

const SERVICE = 'bench.echo.v1.EchoService';
const METHODS = ['Set', 'Get'] as const;

const passThrough = (bytes: Buffer): Buffer => bytes;

function echoDefinition(): ServiceDefinition<UntypedServiceImplementation> {
  const definition: Record<string, MethodDefinition<Buffer, Buffer>> = {};
  for (const method of METHODS) {
    definition[method] = {
      path: `/${SERVICE}/${method}`,
      requestStream: false,
      responseStream: false,
      requestSerialize: passThrough,
      requestDeserialize: passThrough,
      responseSerialize: passThrough,
      responseDeserialize: passThrough,
    };
  }
  return definition;
}

const echo: handleUnaryCall<Buffer, Buffer> = (call, callback) => callback(null, call.request);

function listenAddress(argv: string[]): string {
  const index = argv.indexOf('--listen');
  return index >= 0 && argv[index + 1] ? argv[index + 1] : '127.0.0.1:0';
}

// Without channelz's per-call counting, as kv-server runs: the ceiling is the stack as kv configures it.
const server = new Server({ 'grpc.enable_channelz': 0 });
const implementation: UntypedServiceImplementation = {};
for (const method of METHODS) implementation[method] = echo;
server.addService(echoDefinition(), implementation);

const address = listenAddress(process.argv.slice(2));
server.bindAsync(address, ServerCredentials.createInsecure(), (error, port) => {
  if (error) {
    process.stderr.write(`echo-server: cannot listen on ${address}: ${error.message}\n`);
    process.exit(1);
  }
  const host = address.slice(0, address.lastIndexOf(':'));
  process.stdout.write(`echo-server listening on ${host}:${port}\n`);
});

process.once('SIGTERM', () => server.tryShutdown(() => process.exit(0)));

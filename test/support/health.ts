import path from 'node:path';
import { credentials, loadPackageDefinition, type GrpcObject, type ServiceClientConstructor, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { REPO_ROOT } from './server-process';

/** grpc.health.v1 from the grpc-health-check package, with enums as their names. */
const HEALTH_PROTO = path.join(REPO_ROOT, 'node_modules/grpc-health-check/proto/health/v1/health.proto');

export function healthClient(address: string): InstanceType<ServiceClientConstructor> {
  const definition = loadSync(HEALTH_PROTO, { keepCase: true, enums: String, defaults: true });
  const health = ((loadPackageDefinition(definition).grpc as GrpcObject).health as GrpcObject).v1 as GrpcObject;
  const Client = health.Health as ServiceClientConstructor;
  return new Client(address, credentials.createInsecure());
}

/** The serving status the server reports for kv.v1.KeyValueService (or another service name). */
export async function healthOf(address: string, service = 'kv.v1.KeyValueService'): Promise<string> {
  const client = healthClient(address);
  try {
    return await new Promise((resolve, reject) =>
      (client as unknown as { Check(r: object, cb: (e: ServiceError | null, r: { status: string }) => void): void }).Check(
        { service },
        (error, response) => (error ? reject(error) : resolve(response.status)),
      ),
    );
  } finally {
    client.close();
  }
}

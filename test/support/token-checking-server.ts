import { Metadata, Server, ServerCredentials, status, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import { KeyValueServiceService } from '../../src/gen/kv/v1/kv';

export interface TokenCheckingServer {
  address: string;
  /** The authorization header of every call received, in order ('' when absent). */
  seen: string[];
  close(): Promise<void>;
}

/**
 * A stand-in for the server's authentication, which does not exist yet: it
 * records the authorization header of each call and answers UNAUTHENTICATED
 * unless it is `Bearer <token>`; with it, NOT_FOUND (Get) or an empty answer.
 */
export async function startTokenCheckingServer(token: string): Promise<TokenCheckingServer> {
  const seen: string[] = [];
  const check = (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>, answer: () => void): void => {
    const [authorization = ''] = call.metadata.get('authorization');
    seen.push(String(authorization));
    if (authorization !== `Bearer ${token}`)
      callback({ code: status.UNAUTHENTICATED, details: 'missing or wrong token', metadata: new Metadata() });
    else answer();
  };
  const server = new Server();
  server.addService(KeyValueServiceService, {
    get: (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) =>
      check(call, callback, () => callback({ code: status.NOT_FOUND, details: 'no such key', metadata: new Metadata() })),
    set: (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) =>
      check(call, callback, () => callback(null, { revision: 1 })),
    delete: (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) =>
      check(call, callback, () => callback(null, { deleted: false, revision: 0 })),
    listKeys: (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) =>
      check(call, callback, () => callback(null, { keys: [], nextPageToken: '', revision: 0 })),
    clear: (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) =>
      check(call, callback, () => callback(null, { deletedCount: 0, revision: 0 })),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  return {
    address: `127.0.0.1:${port}`,
    seen,
    close: () => new Promise((resolve) => server.tryShutdown(() => resolve())),
  };
}

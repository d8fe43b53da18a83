import { KvClient } from '@kv/client';
import { startServer, type RunningServer } from './server-process';

/**
 * A real server for the suite and an SDK client on it (5 s deadline),
 * started before its first test and stopped after its last. The getters
 * are read inside tests, once beforeAll has run.
 */
export function serverWithClient(): { readonly server: RunningServer; readonly kv: KvClient } {
  let server: RunningServer | undefined;
  let kv: KvClient | undefined;
  beforeAll(async () => {
    server = await startServer();
    kv = new KvClient(server.address, { deadlineMs: 5000 });
  });
  afterAll(async () => {
    kv?.close();
    await server?.stop();
  });
  return {
    get server() {
      if (server === undefined) throw new Error('the server is started in beforeAll');
      return server;
    },
    get kv() {
      if (kv === undefined) throw new Error('the client is made in beforeAll');
      return kv;
    },
  };
}

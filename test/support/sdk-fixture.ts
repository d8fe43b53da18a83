import { KvClient, KvError } from '@kv/client';
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

/** The KvError the call `name` fails with, whether it throws or rejects; a call that is not refused fails the test. */
export async function refusalOf(name: string, run: () => unknown): Promise<KvError> {
  try {
    await run();
  } catch (error) {
    if (error instanceof KvError) return error;
    throw error;
  }
  throw new Error(`${name} was not refused`);
}

/** Every key the server holds, in order. */
export async function storedKeys(kv: KvClient): Promise<string[]> {
  const keys: string[] = [];
  for await (const key of kv.keys()) keys.push(key);
  return keys;
}

import { KvClient, KvError } from '@kv/client';
import { startServer } from '../support/server-process';
import { startTokenCheckingServer, type TokenCheckingServer } from '../support/token-checking-server';

let tokenServer: TokenCheckingServer;
beforeAll(async () => {
  tokenServer = await startTokenCheckingServer('t0ken');
});
afterAll(() => tokenServer.close());

test('the token goes with every call as "authorization: Bearer <token>"', async () => {
  const kv = new KvClient(tokenServer.address, { token: 't0ken' });
  const before = tokenServer.seen.length;
  await expect(kv.get('k')).resolves.toBeUndefined(); // NOT_FOUND: past authentication
  await kv.set('k', 1);
  await kv.delete('k');
  await kv.listKeysPage({ prefix: '' });
  await kv.clear({ prefix: 'k' });
  kv.close();
  expect(tokenServer.seen.slice(before)).toEqual(Array(5).fill('Bearer t0ken'));
});

test('without a token no authorization header is sent, and the refusal has reason UNAUTHENTICATED', async () => {
  const kv = new KvClient(tokenServer.address);
  const before = tokenServer.seen.length;
  await expect(kv.set('k', 1)).rejects.toMatchObject({ reason: 'UNAUTHENTICATED' });
  kv.close();
  expect(tokenServer.seen.slice(before)).toEqual(['']);
});

test('a token that cannot be an HTTP/2 header value is refused when the client is made', () => {
  for (const token of ['', 'two words', 'line\nbreak', 'naïve']) {
    expect(() => new KvClient(tokenServer.address, { token })).toThrow(KvError);
  }
});

test('health() is SERVING once the server is ready', async () => {
  const server = await startServer();
  const kv = new KvClient(server.address);
  try {
    await expect(kv.health()).resolves.toBe('SERVING');
  } finally {
    kv.close();
    await server.stop();
  }
});

import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { KvClient } from '@kv/client';
import { startServer, type RunningServer } from '../support/server-process';

let server: RunningServer;
let kv: KvClient;

beforeAll(async () => {
  server = await startServer();
  kv = new KvClient(server.address, { retry: { attempts: 1 } });
});

afterAll(async () => {
  kv.close();
  expect(await server.stop()).toBe(0);
});

/** Writes bytes to the port and resolves with whatever came back before the server closed or 2 s passed. */
function sendRaw(payload: Buffer | string): Promise<string> {
  const [host, port] = [server.address.slice(0, server.address.lastIndexOf(':')), Number(server.address.split(':').pop())];
  return new Promise((resolve) => {
    const socket = net.connect({ host, port }, () => socket.write(payload));
    let received = '';
    const done = (): void => {
      socket.destroy();
      resolve(received);
    };
    socket.on('data', (chunk) => (received += chunk.toString('latin1')));
    socket.on('close', done);
    socket.on('error', done);
    socket.setTimeout(2000, done);
  });
}

test('garbage bytes on the port do not take the server down', async () => {
  await Promise.all([sendRaw(randomBytes(4096)), sendRaw(randomBytes(64)), sendRaw('\u0000'.repeat(100))]);
  expect(await kv.set('still', 'serving')).toBeGreaterThan(0);
  expect(server.child.exitCode).toBeNull();
});

test('an HTTP/1.1 request is refused and the server keeps serving', async () => {
  await sendRaw('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
  await sendRaw('POST /kv.v1.KeyValueService/Get HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n\r\nabc');
  expect((await kv.get('still'))?.value).toBe('serving');
});

test('a 10 MB message is rejected without disturbing other clients', async () => {
  const other = new KvClient(server.address, { retry: { attempts: 1 } });
  const huge = kv.set('huge', 'x'.repeat(10 * 1024 * 1024));
  const meanwhile = other.set('small', 1);
  await expect(huge).rejects.toMatchObject({ reason: expect.stringMatching(/TOO_LARGE/) });
  expect(await meanwhile).toBeGreaterThan(0);
  expect((await other.get('small'))?.value).toBe(1);
  other.close();
});

/**
 * HTTP/1.1 pipelining on the HTTP port: requests sent one behind another on
 * one connection, without waiting for answers, are served in order, so a
 * read sees the writes answered before it (a Get pipelined behind a Set
 * used to be served before the Set was applied, and answered after it with
 * the old value).
 */
import net from 'node:net';
import { startServer, type RunningServer } from '../support/server-process';

let server: RunningServer;

beforeAll(async () => {
  server = await startServer({ args: ['--http-listen', '127.0.0.1:0'] });
});

afterAll(async () => {
  await server.stop();
});

const call = (method: string, body: string): string =>
  `POST /kv.v1.KeyValueService/${method} HTTP/1.1\r\nHost: localhost\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

/** Sends every request at once on one connection; the JSON bodies of the answers, in order. */
function pipelined(requests: string[]): Promise<unknown[]> {
  const address = server.httpAddress as string;
  const port = Number(address.slice(address.lastIndexOf(':') + 1));
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => socket.write(requests.join('')));
    let text = '';
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const bodies = [...text.matchAll(/\r\n\r\n(\{[^\r]*?\})(?=HTTP\/1\.1 |$)/g)].map((m) => JSON.parse(m[1]) as unknown);
      if (bodies.length === requests.length) {
        socket.destroy();
        resolve(bodies);
      }
    });
    socket.on('error', reject);
    socket.setTimeout(10_000, () => socket.destroy(new Error(`answers so far: ${text}`)));
  });
}

test('a Get pipelined behind a Set sees it; a Delete then a Get behind it, the key gone', async () => {
  for (let round = 0; round < 5; round++) {
    const key = `pipe/${round}`;
    const answers = await pipelined([
      call('Set', JSON.stringify({ key, value: round })),
      call('Get', JSON.stringify({ key })),
      call('Set', JSON.stringify({ key, value: 'two' })),
      call('Get', JSON.stringify({ key })),
      call('Delete', JSON.stringify({ key })),
      call('Get', JSON.stringify({ key })),
    ]);
    expect(answers[1]).toMatchObject({ entry: { key, value: round } });
    expect(answers[3]).toMatchObject({ entry: { key, value: 'two', version: '2' } });
    expect(answers[4]).toMatchObject({ deleted: true });
    expect(answers[5]).toMatchObject({ code: 'not_found' });
  }
});

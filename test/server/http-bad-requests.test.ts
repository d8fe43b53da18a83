/**
 * Requests no URL can be made of, on the HTTP port: no Host header (HTTP/1.0),
 * a Host or :authority that is not a host, a path that is not one. Each is
 * answered 400 (421 on a loopback listener, for a host that is not
 * loopback's) and the server goes on serving: one such request used to end
 * the process (connect-node threw building the call's URL, outside any
 * handler), and a console path that no URL can hold was never answered,
 * holding its connection past every idle timeout.
 */
import http2 from 'node:http2';
import net from 'node:net';
import { KvClient } from '@kv/client';
import { startServer, type RunningServer } from '../support/server-process';

/** What the server answers to `request` (raw HTTP/1.x bytes) on a new connection, and whether it closed it. */
function rawHttp1(address: string, request: string): Promise<string> {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port }, () => socket.write(request));
    let answer = '';
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString();
      // One whole answer (these are short, with a length or closed after): enough.
      if (/\r\n\r\n[^]*\n$/.test(answer)) socket.end();
    });
    socket.on('close', () => resolve(answer));
    socket.on('error', reject);
    socket.setTimeout(10_000, () => socket.destroy(new Error(`no answer within 10 s to ${JSON.stringify(request.split('\r\n')[0])}`)));
  });
}

/** The status an HTTP/2 request with these headers gets. */
function h2Status(address: string, headers: http2.OutgoingHttpHeaders): Promise<number> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://${address}`);
    session.on('error', reject);
    const stream = session.request(headers);
    stream.on('response', (response) => {
      resolve(Number(response[':status']));
      session.close();
    });
    stream.on('error', reject);
    stream.end('{}');
  });
}

async function stillServes(server: RunningServer): Promise<void> {
  const kv = new KvClient(server.address);
  try {
    await kv.set('alive', 1);
    expect((await kv.get('alive'))?.value).toBe(1);
  } finally {
    kv.close();
  }
  expect(server.child.exitCode).toBeNull();
}

const GET_BODY = '{"key":"a"}';
const post = (version: string, hostLine: string): string =>
  `POST /kv.v1.KeyValueService/Get ${version}\r\n${hostLine}content-type: application/json\r\ncontent-length: ${GET_BODY.length}\r\n\r\n${GET_BODY}`;

test('on an address that is not loopback: no Host, or one that is not a host, is 400 (HTTP/1.0, HTTP/1.1, HTTP/2), and the server goes on', async () => {
  const server = await startServer({ args: ['--http-listen', '0.0.0.0:0', '--insecure'] });
  try {
    const address = `127.0.0.1:${(server.httpAddress as string).split(':').at(-1)}`;
    for (const request of [post('HTTP/1.0', ''), post('HTTP/1.1', 'Host: [bad\r\n')]) {
      expect(await rawHttp1(address, request)).toMatch(/^HTTP\/1\.[01] 400 [^]*bad request: it needs a Host header/);
    }
    expect(
      await h2Status(address, {
        ':method': 'POST',
        ':path': '/kv.v1.KeyValueService/Get',
        ':authority': '[bad',
        'content-type': 'application/json',
      }),
    ).toBe(400);
    // The console needs no Host: a load balancer's HTTP/1.0 health check sends none, and gets the page.
    expect(await rawHttp1(address, 'GET / HTTP/1.0\r\n\r\n')).toMatch(/^HTTP\/1\.[01] 200 /);
    await stillServes(server);
  } finally {
    await server.stop();
  }
});

test('on loopback: an :authority that is not loopback is 421 whatever the Host header beside it says, and the server goes on', async () => {
  const server = await startServer({ args: ['--http-listen', '127.0.0.1:0'] });
  try {
    const headers = { ':method': 'POST', ':path': '/kv.v1.KeyValueService/Get', 'content-type': 'application/json' };
    expect(await h2Status(server.httpAddress as string, { ...headers, ':authority': '[bad', host: 'localhost' })).toBe(421);
    await stillServes(server);
  } finally {
    await server.stop();
  }
});

test('Host sent twice over HTTP/1.1 is 400 (RFC 9112, 3.2), even twice alike, on a call and on the console; the server goes on', async () => {
  const server = await startServer({ args: ['--http-listen', '127.0.0.1:0'] });
  try {
    const address = server.httpAddress as string;
    // Node kept the first line: a proxy in front that checked or routed by the last disagreed with kv on the host.
    for (const hostLines of ['Host: localhost\r\nHost: evil.example\r\n', 'Host: localhost\r\nHost: localhost\r\n']) {
      expect(await rawHttp1(address, post('HTTP/1.1', hostLines))).toMatch(
        /^HTTP\/1\.1 400 [^]*\r\n\r\nbad request: Host was sent more than once: send it once\n$/,
      );
      expect(await rawHttp1(address, `GET / HTTP/1.1\r\n${hostLines}Connection: close\r\n\r\n`)).toMatch(/^HTTP\/1\.1 400 /);
    }
    // One Host line is served as before (the key is not there: the Get's own answer).
    expect(await rawHttp1(address, post('HTTP/1.1', 'Host: localhost\r\nConnection: close\r\n'))).toMatch(
      /^HTTP\/1\.1 404 [^]*"code":"not_found"/,
    );
    await stillServes(server);
  } finally {
    await server.stop();
  }
});

test('a console path no URL can hold is answered 400 at once, not left open', async () => {
  const server = await startServer({ args: ['--http-listen', '127.0.0.1:0'] });
  try {
    for (const path of ['//[bad/', 'http://[bad/']) {
      expect(await rawHttp1(server.httpAddress as string, `GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`)).toMatch(
        /^HTTP\/1\.1 400 /,
      );
    }
    await stillServes(server);
  } finally {
    await server.stop();
  }
});

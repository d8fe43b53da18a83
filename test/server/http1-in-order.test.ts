/**
 * Http1InOrder on a real Node HTTP server: a client that pipelines many
 * requests behind one that is not answered gets few of them read: past
 * MAX_WAITING the connection is no longer read (Node's own back-pressure
 * counts only answers, and a request waiting its turn has none), so what the
 * server holds stays bounded; once the slow one is answered, reading starts
 * again and every request is served, in order. A connection closed with
 * requests waiting leaves nothing held.
 */
import http from 'node:http';
import net from 'node:net';
import { Http1InOrder, MAX_WAITING } from '../../src/server/http/http1-in-order';
import { pollUntil } from '../support/temp-dirs';

/** Node parses all of one read (64 KiB at most) before it can stop: the requests of one read are all handed on. */
const READ_BYTES = 64 * 1024;

interface Harness {
  port: number;
  inOrder: Http1InOrder;
  /** The server's side of each connection. */
  sockets: net.Socket[];
  /** Requests the server has been handed and not yet answered, now and at most. */
  held(): { now: number; most: number };
  /** Answers the request to /slow. */
  release(): void;
  ran: string[];
  /** Every response the server made. */
  responses: http.ServerResponse[];
  close(): Promise<void>;
}

async function startHarness(): Promise<Harness> {
  const inOrder = new Http1InOrder();
  const sockets: net.Socket[] = [];
  const ran: string[] = [];
  const responses: http.ServerResponse[] = [];
  let now = 0;
  let most = 0;
  let slow: http.ServerResponse | undefined;
  const server = http.createServer((request, response) => {
    responses.push(response);
    now++;
    most = Math.max(most, now);
    // Node emits no 'close' for a response still queued when its connection closes.
    let done = false;
    const answered = (): void => {
      if (!done) now--;
      done = true;
    };
    response.once('close', answered);
    request.socket.once('close', answered);
    inOrder.run(request, response, () => {
      ran.push(request.url ?? '');
      if (request.url === '/slow') return void (slow = response);
      // Each body is read, as a call's is: reading one resumes the socket in Node, which must not undo the pause.
      request.resume();
      request.once('end', () => response.end(`${request.url}\n`));
    });
  });
  server.on('connection', (socket: net.Socket) => sockets.push(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    inOrder,
    sockets,
    held: () => ({ now, most }),
    release: () => slow?.end('/slow\n'),
    ran,
    responses,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** A pipelined POST with a body of `size` bytes (by default, the whole request about 1 KiB). */
function post(path: string, size = 900): Buffer {
  return Buffer.concat([
    Buffer.from(`POST ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${size}\r\n\r\n`),
    Buffer.alloc(size, 'x'),
  ]);
}

let harness: Harness;

beforeEach(async () => {
  harness = await startHarness();
});

afterEach(async () => {
  await harness.close();
});

// Without bodies, nothing but Http1InOrder starts reading again (reading a body resumes the socket in Node).
test.each([
  ['with bodies', 900],
  ['without bodies', 0],
])(
  'requests pipelined behind an unanswered one, %s: reading stops with a bounded number held, and all are served once it is answered',
  async (_, size) => {
    const count = 5000;
    const requests = Array.from({ length: count }, (_, i) => post(`/r${i}`, size));
    const client = net.connect({ host: '127.0.0.1', port: harness.port });
    client.on('error', () => undefined);
    let answered = '';
    client.setEncoding('latin1');
    client.on('data', (chunk: string) => (answered += chunk));
    // With bodies, about 5 MB: the socket buffers hold some of it, the rest waits in the client.
    client.write(Buffer.concat([post('/slow'), ...requests]));

    const [socket] = await pollUntil('the connection', () => (harness.sockets.length === 1 ? harness.sockets : undefined));
    await pollUntil('the server to stop reading', () =>
      harness.inOrder.waitingOn(socket) >= MAX_WAITING && socket.isPaused() ? true : undefined,
    );
    const perRead = Math.ceil(READ_BYTES / requests[0].length) + 1;
    expect(harness.held().now).toBeLessThanOrEqual(1 + MAX_WAITING + perRead);
    expect(harness.ran).toEqual(['/slow']);

    harness.release();
    await pollUntil('every answer', () => (answered.split('HTTP/1.1 200').length - 1 === count + 1 ? true : undefined), 60_000);
    expect(harness.ran).toEqual(['/slow', ...requests.map((_, i) => `/r${i}`)]);
    const bodies = [...answered.matchAll(/\r\n\r\n(\/\w+)\n/g)].map((match) => match[1]);
    expect(bodies).toEqual(harness.ran);
    // Never more held than that, all along.
    expect(harness.held().most).toBeLessThanOrEqual(1 + MAX_WAITING + perRead);
    expect(harness.inOrder.waitingOn(socket)).toBe(0);
    client.destroy();
  },
  90_000,
);

test('requests waiting when the connection closes are never run, and not held', async () => {
  const client = net.connect({ host: '127.0.0.1', port: harness.port });
  client.on('error', () => undefined);
  client.write(Buffer.concat([post('/slow'), post('/a'), post('/b')]));
  const [socket] = await pollUntil('the connection', () => (harness.sockets.length === 1 ? harness.sockets : undefined));
  await pollUntil('both to wait', () => (harness.inOrder.waitingOn(socket) === 2 ? true : undefined));
  client.destroy();
  await pollUntil('the server to see the connection close', () => (harness.inOrder.waitingOn(socket) === 0 ? true : undefined));
  expect(harness.ran).toEqual(['/slow']);
  // Nothing of the waiting requests is kept by Http1InOrder: their responses have no listener of it left.
  expect(harness.responses.map((response) => response.listenerCount('socket'))).toEqual([0, 0, 0]);
});

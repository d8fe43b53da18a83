/**
 * --max-connections-per-address: one client address (IPv6: one /64) may
 * hold only its share of a port's connections, so a client that opens
 * --max-connections of them (and answers pings, so they stay until
 * --max-connection-idle-ms) cannot lock everyone else out. Against the real
 * server, on the gRPC port and the HTTP port, the greedy client from
 * 127.0.0.1 and the others from 127.0.0.2 (Linux routes all of 127/8 to
 * loopback); and the count itself, with sockets of any address.
 */
import { EventEmitter } from 'node:events';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import pino from 'pino';
import { type Config, ConfigError, loadConfig } from '../../src/config';
import { SetRequest } from '../../src/gen/kv/v1/kv';
import { connectionCap } from '../../src/server/connection-limits';
import { writeAuthFile } from '../support/auth-fixture';
import { type RunningServer, startServer } from '../support/server-process';
import { makeTempDir, pollUntil } from '../support/temp-dirs';

/** Where the other clients connect from: not the greedy one's address. */
const OTHER_ADDRESS = '127.0.0.2';

/** HTTP/2 connections from 127.0.0.1 that answer pings (Node's client), as many as asked; each ends up taken (the server's SETTINGS came) or closed. */
class GreedyClient {
  readonly sessions: http2.ClientHttp2Session[] = [];
  private readonly taken = new Set<http2.ClientHttp2Session>();
  private readonly closed = new Set<http2.ClientHttp2Session>();

  constructor(address: string, count: number) {
    for (let i = 0; i < count; i++) {
      const session = http2.connect(`http://${address}`);
      session.on('error', () => undefined);
      session.once('remoteSettings', () => this.taken.add(session));
      session.once('close', () => this.closed.add(session));
      this.sessions.push(session);
    }
  }

  /** Waits until each connection was taken or closed; resolves with how many are open. */
  async settled(): Promise<number> {
    await pollUntil('every connection taken or closed', () =>
      this.sessions.every((s) => this.taken.has(s) || this.closed.has(s)) ? true : undefined,
    );
    return this.open();
  }

  open(): number {
    return this.sessions.filter((s) => !this.closed.has(s)).length;
  }

  close(): void {
    for (const session of this.sessions) session.destroy();
  }
}

/** A unary gRPC Set over a connection from `localAddress`; resolves with its grpc-status, rejects if the connection is refused. */
function grpcSetFrom(localAddress: string, address: string, token: string): Promise<string> {
  const [host, port] = address.split(':');
  const session = http2.connect(`http://${address}`, { createConnection: () => net.connect({ host, port: Number(port), localAddress }) });
  return new Promise<string>((resolve, reject) => {
    session.on('error', reject);
    session.once('close', () => reject(new Error(`the connection from ${localAddress} was closed without an answer`)));
    const stream = session.request({
      ':method': 'POST',
      ':path': '/kv.v1.KeyValueService/Set',
      'content-type': 'application/grpc',
      te: 'trailers',
      authorization: `Bearer ${token}`,
    });
    stream.on('error', reject);
    // A trailers-only answer carries the status in its headers.
    stream.on('response', (headers) => headers['grpc-status'] !== undefined && resolve(String(headers['grpc-status'])));
    stream.on('trailers', (trailers) => resolve(String(trailers['grpc-status'])));
    stream.resume();
    const message = SetRequest.encode({ key: 'served', value: 'yes', lease: 0, ttlMs: 0 }).finish();
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(message.length, 1);
    stream.end(Buffer.concat([prefix, message]));
  }).finally(() => session.destroy());
}

/** A Connect JSON Set over HTTP/1.1 from `localAddress`; resolves with the HTTP status, rejects if the connection is refused. */
function httpSetFrom(localAddress: string, address: string, token: string): Promise<number> {
  const [host, port] = address.split(':');
  const body = JSON.stringify({ key: 'served', value: 'yes' });
  return new Promise((resolve, reject) => {
    const request = http.request(
      {
        host,
        port: Number(port),
        localAddress,
        method: 'POST',
        path: '/kv.v1.KeyValueService/Set',
        agent: false,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'content-length': Buffer.byteLength(body) },
      },
      (response) => {
        response.resume();
        response.once('end', () => resolve(response.statusCode ?? 0));
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

async function startWithToken(args: string[]): Promise<{ server: RunningServer; token: string }> {
  const auth = writeAuthFile(makeTempDir('kv-per-address-'), {
    roles: { app: [{ prefix: '', permission: 'write' }] },
    tokens: { app: 'app' },
  });
  const server = await startServer({ args: ['--auth-file', auth.file, ...args] });
  return { server, token: auth.tokens.app };
}

const linesWith = (output: string, text: string): number => output.split('\n').filter((line) => line.includes(text)).length;

test('gRPC port: one address that opens --max-connections connections keeps only its share (a quarter by default), and another is served', async () => {
  const { server, token } = await startWithToken(['--max-connections', '20']);
  const greedy = new GreedyClient(server.address, 20);
  try {
    expect(await greedy.settled()).toBe(5);
    expect(await grpcSetFrom(OTHER_ADDRESS, server.address, token)).toBe('0');
    // Said once for the 15 refusals, naming the address, not once each.
    const line =
      'refused 1 connection(s) from 127.0.0.1: 5 are open from it (--max-connections-per-address; 0 if every client comes through a proxy or NAT at this address)';
    await pollUntil('the refusal to be logged', () => (server.output().includes(line) ? true : undefined));
    expect(linesWith(server.output(), 'connection(s) from 127.0.0.1')).toBe(1);
    expect(server.output()).not.toContain('connection(s): 20 are open'); // the port's own cap was never reached
    expect(greedy.open()).toBe(5);

    // A connection of the address that closes makes room for another from it.
    greedy.sessions.find((s) => !s.closed && !s.destroyed)?.destroy();
    await pollUntil('a connection from 127.0.0.1 to be taken again', async () => {
      const again = new GreedyClient(server.address, 1);
      const open = await again.settled();
      again.close();
      return open === 1 ? true : undefined;
    });
  } finally {
    greedy.close();
    expect(await server.stop()).toBe(0);
  }
});

test('HTTP port: the same share, counted for the port alone; another address is served', async () => {
  const { server, token } = await startWithToken(['--http-listen', '127.0.0.1:0', '--max-connections', '8']);
  const greedy = new GreedyClient(server.httpAddress!, 8);
  try {
    expect(await greedy.settled()).toBe(2);
    expect(await httpSetFrom(OTHER_ADDRESS, server.httpAddress!, token)).toBe(200);
    const line =
      'HTTP port: refused 1 connection(s) from 127.0.0.1: 2 are open from it (--max-connections-per-address; 0 if every client comes through a proxy or NAT at this address)';
    await pollUntil('the refusal to be logged', () => (server.output().includes(line) ? true : undefined));
    expect(linesWith(server.output(), 'connection(s) from 127.0.0.1')).toBe(1);
    // The gRPC port counts its own: 127.0.0.1 has none open there.
    expect(await grpcSetFrom('127.0.0.1', server.address, token)).toBe('0');
  } finally {
    greedy.close();
    expect(await server.stop()).toBe(0);
  }
});

test('--max-connections-per-address 0 leaves only the port cap, as before', async () => {
  const { server, token } = await startWithToken(['--max-connections', '4', '--max-connections-per-address', '0']);
  const greedy = new GreedyClient(server.address, 4);
  try {
    expect(await greedy.settled()).toBe(4);
    await expect(grpcSetFrom(OTHER_ADDRESS, server.address, token)).rejects.toThrow();
    await pollUntil('the refusal to be logged', () => (server.output().includes('refused 1 connection(s): 4 are open') ? true : undefined));
  } finally {
    greedy.close();
    expect(await server.stop()).toBe(0);
  }
});

/** A socket as the cap sees it: an address, and a close when destroyed. */
class FakeSocket extends EventEmitter {
  destroyed = false;
  readonly remotePort = 40_000;
  constructor(readonly remoteAddress: string) {
    super();
  }
  destroy(): this {
    if (!this.destroyed) {
      this.destroyed = true;
      this.emit('close');
    }
    return this;
  }
}

function capWithLog(maxConnections: number, maxConnectionsPerAddress: number): { admit: (address: string) => FakeSocket; lines: string[] } {
  const lines: string[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => void lines.push((JSON.parse(line) as { msg: string }).msg) });
  const cap = connectionCap({ maxConnections, maxConnectionsPerAddress }, logger, '');
  return {
    lines,
    admit: (address) => {
      const socket = new FakeSocket(address);
      cap(socket as unknown as net.Socket);
      return socket;
    },
  };
}

test('IPv6 clients are counted per /64, as the auth failure limit counts them; IPv4-mapped addresses as IPv4', () => {
  const { admit, lines } = capWithLog(100, 2);
  expect(admit('2001:db8:1:2::5').destroyed).toBe(false);
  expect(admit('2001:db8:1:2:ffff:1:2:3').destroyed).toBe(false);
  // A third address of the same /64 is over its share; one of another /64 is not.
  expect(admit('2001:db8:1:2::9').destroyed).toBe(true);
  expect(admit('2001:db8:1:3::5').destroyed).toBe(false);
  expect(admit('10.0.0.7').destroyed).toBe(false);
  expect(admit('::ffff:10.0.0.7').destroyed).toBe(false);
  expect(admit('10.0.0.7').destroyed).toBe(true);
  expect(lines).toEqual([
    'refused 1 connection(s) from 2001:db8:1:2::/64: 2 are open from it (--max-connections-per-address; 0 if every client comes through a proxy or NAT at this address)',
    'refused 1 connection(s) from 10.0.0.7: 2 are open from it (--max-connections-per-address; 0 if every client comes through a proxy or NAT at this address)',
  ]);
});

test("refusals are said once per address per 10 s, whatever their number; an address's share comes back as its connections close", () => {
  const { admit, lines } = capWithLog(100, 1);
  const held = admit('10.0.0.1');
  for (let i = 0; i < 1000; i++) expect(admit('10.0.0.1').destroyed).toBe(true);
  admit('10.0.0.2');
  for (let i = 0; i < 1000; i++) admit('10.0.0.2');
  expect(lines).toHaveLength(2);
  held.destroy();
  expect(admit('10.0.0.1').destroyed).toBe(false);
});

test('refusals counted after a line are said when the 10 s are over, even if none follows', () => {
  jest.useFakeTimers();
  try {
    const { admit, lines } = capWithLog(100, 1);
    admit('10.0.0.1');
    for (let i = 0; i < 1000; i++) admit('10.0.0.1');
    admit('10.0.0.2');
    admit('10.0.0.2');
    const perAddress = (address: string, refused: number): string =>
      `refused ${refused} connection(s) from ${address}: 1 are open from it (--max-connections-per-address; 0 if every client comes through a proxy or NAT at this address)`;
    expect(lines).toEqual([perAddress('10.0.0.1', 1), perAddress('10.0.0.2', 1)]);
    jest.advanceTimersByTime(9_999);
    expect(lines).toHaveLength(2);
    jest.advanceTimersByTime(1);
    expect(lines).toEqual([perAddress('10.0.0.1', 1), perAddress('10.0.0.2', 1), perAddress('10.0.0.1', 999)]);
  } finally {
    jest.useRealTimers();
  }
});

test('past the port cap, the port line; below it, each address its share', () => {
  const { admit, lines } = capWithLog(3, 2);
  const sockets = ['10.0.0.1', '10.0.0.1', '10.0.0.2'].map(admit);
  expect(sockets.map((s) => s.destroyed)).toEqual([false, false, false]);
  expect(admit('10.0.0.3').destroyed).toBe(true);
  expect(lines).toEqual(['refused 1 connection(s): 3 are open']);
});

test('--max-connections-per-address: auto is a quarter of --max-connections, at least 1; 0 is none; anything else a one-line error', () => {
  const perAddress = (argv: string[], env: NodeJS.ProcessEnv = {}): number => (loadConfig(argv, env) as Config).maxConnectionsPerAddress;
  expect(perAddress([])).toBe(250);
  expect(perAddress(['--max-connections', '20'])).toBe(5);
  expect(perAddress(['--max-connections', '3'])).toBe(1);
  expect(perAddress(['--max-connections-per-address', '0'])).toBe(0);
  expect(perAddress(['--max-connections-per-address', '1000'])).toBe(1000);
  expect(perAddress([], { KV_MAX_CONNECTIONS_PER_ADDRESS: '7' })).toBe(7);
  expect(() => perAddress(['--max-connections-per-address', 'many'])).toThrow(
    new ConfigError('--max-connections-per-address: "many" is not a number of connections (0: no cap per address) or auto'),
  );
  expect(() => perAddress(['--max-connections-per-address', '-1'])).toThrow(ConfigError);
});

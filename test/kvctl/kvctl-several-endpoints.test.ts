/** kvctl given several endpoints, the first of them one where no server listens. */
import { type AddressInfo, type Socket, createServer } from 'node:net';
import { KvClient } from '@kv/client';
import { freePort } from '../support/free-port';
import { runKvctl, type KvctlResult } from '../support/kvctl-process';
import { startServer, type RunningServer } from '../support/server-process';

let server: RunningServer;
let other: RunningServer;
let dead: string;

beforeAll(async () => {
  [server, other] = await Promise.all([startServer(), startServer()]);
  dead = `127.0.0.1:${await freePort()}`;
});

afterAll(async () => {
  await Promise.all([server.stop(), other.stop()]);
});

const kvctl = (endpoints: string[], args: string[]): Promise<KvctlResult> => runKvctl(args, { env: { KV_ENDPOINTS: endpoints.join(',') } });

describe('health', () => {
  test('asks each endpoint on its own and names each with its own status; exit 4 unless all are SERVING', async () => {
    const result = await kvctl([dead, server.address], ['health']);
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 4, stderr: '' });
    expect(JSON.parse(result.stdout)).toEqual([
      { endpoint: dead, status: 'UNREACHABLE', error: expect.stringMatching(/^no connection: .*ECONNREFUSED/) },
      { endpoint: server.address, status: 'SERVING' },
    ]);
  });

  test('exit 0 when every endpoint is SERVING', async () => {
    const result = await kvctl([server.address, other.address], ['health']);
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
    expect(JSON.parse(result.stdout)).toEqual([
      { endpoint: server.address, status: 'SERVING' },
      { endpoint: other.address, status: 'SERVING' },
    ]);
    const value = await kvctl([server.address, other.address], ['health', '-o', 'value']);
    expect(value.stdout).toBe(`${server.address} SERVING\n${other.address} SERVING\n`);
  });
});

describe('calls', () => {
  test('a write goes to the next endpoint when the first cannot be connected to', async () => {
    const set = await kvctl([dead, server.address], ['set', 'several/w', '1']);
    expect({ code: set.code, stderr: set.stderr }).toEqual({ code: 0, stderr: '' });
    const kv = new KvClient(server.address);
    try {
      expect((await kv.get('several/w'))?.value).toBe(1);
    } finally {
      kv.close();
    }
    for (const args of [
      ['del', 'several/w'],
      ['txn', '--then', 'set several/t 2'],
      ['clear', 'several/', '--yes'],
      ['lease', 'grant', '5000'],
    ]) {
      const result = await kvctl([dead, server.address], args);
      expect({ args, code: result.code, stderr: result.stderr }).toEqual({ args, code: 0, stderr: '' });
    }
  });
});

describe('health with a frozen endpoint', () => {
  test('one that takes the connection but never answers is UNREACHABLE after 2 s, as calls pass it over, not after --timeout-ms', async () => {
    // A stopped server, or something that does not speak gRPC: the TCP connection is accepted, nothing comes back.
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const frozen = `127.0.0.1:${(silent.address() as AddressInfo).port}`;
    try {
      // --timeout-ms a minute: the run is given half that, so it fails if health waits the whole --timeout-ms on the frozen one.
      const result = await runKvctl(['health', '--timeout-ms', '60000'], {
        env: { KV_ENDPOINTS: [frozen, server.address].join(',') },
        timeoutMs: 30_000,
      });
      expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 4, stderr: '' });
      expect(JSON.parse(result.stdout)).toEqual([
        { endpoint: frozen, status: 'UNREACHABLE', error: expect.stringMatching(/^no answer within 2000 ms/) },
        { endpoint: server.address, status: 'SERVING' },
      ]);
    } finally {
      for (const socket of sockets) socket.destroy();
      silent.close();
    }
  });
});

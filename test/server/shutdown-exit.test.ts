/**
 * How a stop ends: once the grace is over, every connection is closed and
 * the process ends because nothing holds it, not by main.ts's fallback exit
 * (which used to end it 2 s later).
 */
import { callNeverFinished } from '../support/raw-http2';
import { REPORT_DRAINED_LOOP, type RunningServer, startServer } from '../support/server-process';

const running: RunningServer[] = [];
afterEach(async () => {
  for (const server of running.splice(0)) await server.kill();
});

async function serve(args: string[]): Promise<RunningServer> {
  const server = await startServer({ args, env: { KV_LOG_LEVEL: 'info' }, nodeArgs: ['--import', REPORT_DRAINED_LOOP] });
  running.push(server);
  return server;
}

test.each([
  ['a unary call (served off the HTTP/2 stream)', '/kv.v1.KeyValueService/Set'],
  ['a server-streaming call (served by grpc-js)', '/kv.v1.KeyValueService/Backup'],
])('once the grace is over, %s whose request never ended is cancelled and nothing holds the process', async (_, path) => {
  const server = await serve(['--shutdown-grace-ms', '500']);
  const connection = await callNeverFinished(server.address, path);
  expect(await server.stop('SIGTERM')).toBe(0);
  expect(server.output()).toContain('grace period over; cancelling calls still in flight');
  expect(server.output()).toContain('stopped; data directory released');
  expect(server.output()).toContain('event loop drained');
  expect(connection.isClosed).toBe(true);
  connection.close();
});

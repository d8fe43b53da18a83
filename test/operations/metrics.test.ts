/**
 * --metrics-listen as Prometheus and a load balancer see it: a real server,
 * calls over gRPC and over the HTTP port, then /metrics scraped and read
 * line by line; /healthz and /readyz, including while a long recovery runs.
 */
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { KvClient } from '@kv/client';
import { METRICS_LINE, spawnServer, startServer, type RunningServer } from '../support/server-process';
import { makeTempDir, pollUntil } from '../support/temp-dirs';
import { writeBigLog } from '../support/write-big-log';

/** The value of the sample `name{labels}` (labels as Prometheus prints them), or undefined if absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const servers: RunningServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

test('/metrics counts calls by method and code on both ports, open streams, and the store; /healthz and /readyz answer', async () => {
  const server = await startServer({ args: ['--metrics-listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0'] });
  servers.push(server);
  const metrics = `http://${server.metricsAddress}`;
  const kv = new KvClient(server.address);
  const watch = kv.watch({ prefix: 'w/' });
  // A watch opens its stream once iterated.
  const events = watch[Symbol.asyncIterator]();
  const nextEvent = events.next().catch(() => undefined);
  try {
    for (let i = 0; i < 3; i++) await kv.set(`k/${i}`, { i });
    expect(await kv.get('missing')).toBeUndefined();
    await expect(kv.set('k/0', 1, { expectedRevision: 99 })).rejects.toMatchObject({ reason: 'REVISION_MISMATCH' });
    // The same Get over the HTTP port (Connect, JSON).
    const overHttp = await fetch(`http://${server.httpAddress}/kv.v1.KeyValueService/Get`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ key: 'missing' }),
    });
    expect(overHttp.status).toBe(404);

    const text = await pollUntil('the watch to count as an open stream', async () => {
      const body = await (await fetch(`${metrics}/metrics`)).text();
      return sample(body, 'kv_grpc_server_open_streams{method="Watch"}') === 1 ? body : undefined;
    });
    expect(sample(text, 'kv_grpc_server_handled_total{method="Set",code="OK"}')).toBe(3);
    expect(sample(text, 'kv_grpc_server_handled_total{method="Set",code="ABORTED"}')).toBe(1);
    expect(sample(text, 'kv_grpc_server_handled_total{method="Get",code="NOT_FOUND"}')).toBe(2);
    expect(sample(text, 'kv_grpc_server_handling_seconds_count{method="Set"}')).toBe(4);
    expect(sample(text, 'kv_grpc_server_in_flight_calls{method="Set"}')).toBe(0);
    expect(sample(text, 'kv_store_keys')).toBe(3);
    expect(sample(text, 'kv_store_revision')).toBe(3);
    expect(sample(text, 'kv_store_watchers')).toBe(1);
    expect(sample(text, 'kv_store_writable')).toBe(1);
    expect(sample(text, 'kv_store_fsync_duration_seconds_count')).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'kv_store_log_bytes')).toBeGreaterThan(0);
    expect(text).toMatch(/^kv_build_info\{version="[^"]+",engine="file"\} 1$/m);
    expect(text).toMatch(/^process_resident_memory_bytes \d+/m);
    // Keys and values never appear in metrics.
    expect(text).not.toContain('k/0');

    expect(await (await fetch(`${metrics}/healthz`)).text()).toBe('ok\n');
    const ready = await fetch(`${metrics}/readyz`);
    expect([ready.status, await ready.text()]).toEqual([200, 'ready\n']);
    expect((await fetch(`${metrics}/nothing`)).status).toBe(404);
    expect((await fetch(`${metrics}/metrics`, { method: 'POST' })).status).toBe(405);
    // On loopback it answers only requests addressed to loopback: a web page's, through DNS rebinding, is 421.
    const [host, port] = (server.metricsAddress ?? '').split(':');
    const statusFor = (hostHeader: string): Promise<number | undefined> =>
      new Promise((resolve, reject) =>
        http
          .get({ host, port, path: '/metrics', headers: { host: hostHeader } }, (response) => {
            response.resume();
            resolve(response.statusCode);
          })
          .on('error', reject),
      );
    expect(await statusFor('evil.example')).toBe(421);
    expect(await statusFor(`evil.example:${port}`)).toBe(421);
    expect(await statusFor(`localhost:${port}`)).toBe(200);
    expect(await statusFor(`127.0.0.1:${port}`)).toBe(200);
    // HTTP/1.0 with no Host (HAProxy's default health check) is no browser's: answered.
    const bare = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(Number(port), host, () => socket.end('GET /healthz HTTP/1.0\r\n\r\n'));
      let text = '';
      socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    });
    expect(bare).toMatch(/^HTTP\/1\.[01] 200 /);
  } finally {
    watch.close();
    await nextEvent;
    kv.close();
  }
});

test('a call this server ends before its handler (a request too large, a deadline passed before it came) counts; a client gone mid-request does not', async () => {
  const server = await startServer({ args: ['--metrics-listen', '127.0.0.1:0'] });
  servers.push(server);
  const session = http2.connect(`http://${server.address}`);
  session.on('error', () => undefined);
  const statusOf = (path: string, body: Buffer, headers: http2.OutgoingHttpHeaders = {}, end = true): Promise<string | undefined> =>
    new Promise((resolve) => {
      const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...headers });
      let code: string | undefined;
      stream.on('response', (h) => (code ??= h['grpc-status'] as string | undefined));
      stream.on('trailers', (t) => (code = t['grpc-status'] as string | undefined));
      stream.on('error', () => resolve(code));
      stream.on('close', () => resolve(code));
      // Answered before the request ended (a deadline): the request is cancelled, so the stream closes.
      stream.on('end', () => {
        if (!stream.writableEnded) stream.close();
      });
      stream.resume();
      stream.write(body);
      if (end) stream.end();
    });
  const header = (declared: number): Buffer =>
    Buffer.from([0, declared >>> 24, (declared >>> 16) & 0xff, (declared >>> 8) & 0xff, declared & 0xff]);
  try {
    // 17 MiB, over the 16 MiB request limit: RESOURCE_EXHAUSTED (8).
    const big = 17 * 1024 * 1024;
    expect(await statusOf('/kv.v1.KeyValueService/Set', Buffer.concat([header(big), Buffer.alloc(big, 0x20)]))).toBe('8');
    // A request that never comes within its deadline: DEADLINE_EXCEEDED (4).
    expect(await statusOf('/kv.v1.KeyValueService/Get', header(100), { 'grpc-timeout': '200m' }, false)).toBe('4');
    // A client that leaves with half its request sent gets no answer, and its call is not counted (grpc-js does not count such calls either).
    const gone = http2.connect(`http://${server.address}`);
    gone.on('error', () => undefined);
    const half = gone.request({
      ':method': 'POST',
      ':path': '/kv.v1.KeyValueService/Set',
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    half.on('error', () => undefined);
    half.write(Buffer.concat([header(1000), Buffer.alloc(10, 0x0a)]));
    await new Promise((resolve) => setTimeout(resolve, 200));
    gone.destroy();

    const text = await pollUntil('the calls to be counted', async () => {
      const body = await (await fetch(`http://${server.metricsAddress}/metrics`)).text();
      return sample(body, 'kv_grpc_server_handled_total{method="Get",code="DEADLINE_EXCEEDED"}') === 1 ? body : undefined;
    });
    expect(sample(text, 'kv_grpc_server_handled_total{method="Set",code="RESOURCE_EXHAUSTED"}')).toBe(1);
    expect(sample(text, 'kv_grpc_server_handled_total{method="Set",code="INVALID_ARGUMENT"}')).toBeUndefined();
    expect(sample(text, 'kv_grpc_server_handled_total{method="Set",code="UNIMPLEMENTED"}')).toBeUndefined();
    expect(sample(text, 'kv_grpc_server_handling_seconds_count{method="Set"}')).toBe(1);
    expect(sample(text, 'kv_grpc_server_in_flight_calls{method="Set"}')).toBe(0);
    expect(sample(text, 'kv_grpc_server_in_flight_calls{method="Get"}')).toBe(0);
  } finally {
    session.close();
  }
});

test('/readyz says 503 while the store recovers a long log, /healthz already answers, then both are 200', async () => {
  const dataDir = makeTempDir();
  await writeBigLog(dataDir, 400_000);
  const child = spawnServer(['--listen', '127.0.0.1:0', '--data-dir', dataDir, '--metrics-listen', '127.0.0.1:0']);
  let stdout = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    const address = await pollUntil('the metrics port', () => METRICS_LINE.exec(stdout)?.[1], 30_000);
    const first = await fetch(`http://${address}/readyz`);
    // Up before the store: a long recovery is "not ready", not a dead process.
    if (!stdout.includes('kv-server listening')) {
      expect([first.status, await first.text()]).toEqual([503, 'not ready: the store is opening\n']);
      expect((await fetch(`http://${address}/healthz`)).status).toBe(200);
    }
    await pollUntil('ready', async () => ((await fetch(`http://${address}/readyz`)).status === 200 ? true : undefined), 60_000);
    expect(stdout).toContain('kv-server listening');
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}, 90_000);

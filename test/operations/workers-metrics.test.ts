/**
 * --metrics-listen with --workers 2 as Prometheus sees it: one port for the
 * whole server, the calls of every worker summed, the store's metrics from
 * the owner once, one series per process for the process metrics; /readyz
 * for the whole server; a scrape while a worker is killed or stopped
 * answers within a bounded time.
 */
import { KvClient } from '@kv/client';
import { METRICS_LINE, clusterChildren, spawnServer, startServer, type RunningServer } from '../support/server-process';
import { describeWithEtcd, startEtcdCluster, type EtcdCluster } from '../support/etcd-cluster';
import { makeTempDir, pollUntil } from '../support/temp-dirs';
import { writeBigLog } from '../support/write-big-log';

jest.setTimeout(90_000);

/** The value of the sample `name{labels}` (labels as Prometheus prints them), or undefined if absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** Clients on separate connections: the supervisor deals connections to the workers in turn. */
function clients(address: string, n: number): KvClient[] {
  return Array.from({ length: n }, (_, i) => new KvClient(address, { channelOptions: { 'grpc.kv_test_channel': i } }));
}

/** A scrape, with how long it took; it fails rather than wait past `limitMs`. */
async function scrape(address: string, path = '/metrics', limitMs = 8000): Promise<{ status: number; text: string; ms: number }> {
  const started = performance.now();
  const response = await fetch(`http://${address}${path}`, { signal: AbortSignal.timeout(limitMs) });
  const text = await response.text();
  return { status: response.status, text, ms: performance.now() - started };
}

function workerPids(server: RunningServer): number[] {
  return clusterChildren(server.child.pid as number)
    .filter((c) => c.role === 'worker')
    .map((c) => c.pid);
}

let server: RunningServer | undefined;
let open: KvClient[] = [];
afterEach(async () => {
  for (const kv of open) kv.close();
  open = [];
  const pids = server === undefined ? [] : clusterChildren(server.child.pid as number).map((c) => c.pid);
  await server?.kill();
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone with its supervisor.
    }
  }
  server = undefined;
});

const SETS_PER_CLIENT = 5;
const CLIENTS = 6;

/** Sets through every client (distinct keys), and a Get of a missing key through each: returns the number of Sets. */
async function callThroughEvery(kvs: KvClient[]): Promise<number> {
  await Promise.all(
    kvs.map(async (kv, c) => {
      for (let i = 0; i < SETS_PER_CLIENT; i++) await kv.set(`c${c}/${i}`, i);
      expect(await kv.get('missing')).toBeUndefined();
    }),
  );
  return kvs.length * SETS_PER_CLIENT;
}

test('one metrics port sums the calls of both workers and reports the store once, from its owner', async () => {
  server = await startServer({ args: ['--workers', '2', '--metrics-listen', '127.0.0.1:0'] });
  expect(server.output().match(new RegExp(METRICS_LINE, 'g'))).toHaveLength(1);
  const metrics = server.metricsAddress as string;
  open = clients(server.address, CLIENTS);
  const sets = await callThroughEvery(open);

  const { status, text } = await scrape(metrics);
  expect(status).toBe(200);
  // Every call, whichever worker it reached (the supervisor deals the six connections to both).
  expect(sample(text, 'kv_grpc_server_handled_total{method="Set",code="OK"}')).toBe(sets);
  expect(sample(text, 'kv_grpc_server_handled_total{method="Get",code="NOT_FOUND"}')).toBe(CLIENTS);
  expect(sample(text, 'kv_grpc_server_handling_seconds_count{method="Set"}')).toBe(sets);
  expect(sample(text, 'kv_grpc_server_in_flight_calls{method="Set"}')).toBe(0);
  // The store's, from the owner alone: not once per replica.
  expect(sample(text, 'kv_store_commit_batch_writes_sum')).toBe(sets);
  expect(sample(text, 'kv_store_revision')).toBe(sets);
  expect(sample(text, 'kv_store_keys')).toBe(sets);
  expect(sample(text, 'kv_store_watchers')).toBe(0);
  expect(sample(text, 'kv_store_writable')).toBe(1);
  const fsyncs = sample(text, 'kv_store_fsync_duration_seconds_count') as number;
  expect(fsyncs).toBeGreaterThanOrEqual(1);
  expect(fsyncs).toBeLessThanOrEqual(sets);
  expect(text).toMatch(/^kv_build_info\{version="[^"]+",engine="file"\} 1$/m);
  // Each process its own series.
  for (const process of ['supervisor', 'owner', 'worker-1', 'worker-2']) {
    expect(sample(text, `kv_process_up{process="${process}"}`)).toBe(1);
    expect(sample(text, `process_resident_memory_bytes{process="${process}"}`)).toBeGreaterThan(0);
    expect(sample(text, `process_start_time_seconds{process="${process}"}`)).toBeGreaterThan(0);
  }
  expect(text).not.toContain('c0/0');

  expect(await scrape(metrics, '/readyz')).toMatchObject({ status: 200, text: 'ready\n' });
  expect(await scrape(metrics, '/healthz')).toMatchObject({ status: 200, text: 'ok\n' });
});

test('the watchers of every worker are summed, not the owner’s feeds to its workers', async () => {
  server = await startServer({ args: ['--workers', '2', '--metrics-listen', '127.0.0.1:0'] });
  open = clients(server.address, 4);
  const watches = open.map((kv) => kv.watch({ prefix: 'w/' }));
  const firsts = watches.map((watch) =>
    watch[Symbol.asyncIterator]()
      .next()
      .catch(() => undefined),
  );
  try {
    const text = await pollUntil('four watches counted', async () => {
      const { text } = await scrape(server!.metricsAddress as string);
      return sample(text, 'kv_grpc_server_open_streams{method="Watch"}') === 4 ? text : undefined;
    });
    expect(sample(text, 'kv_store_watchers')).toBe(4);
  } finally {
    for (const watch of watches) watch.close();
    await Promise.all(firsts);
  }
});

test('a worker killed with SIGKILL: every scrape meanwhile answers within a bound, and the sums never go back', async () => {
  server = await startServer({ args: ['--workers', '2', '--metrics-listen', '127.0.0.1:0'] });
  const metrics = server.metricsAddress as string;
  open = clients(server.address, CLIENTS);
  const sets = await callThroughEvery(open);
  expect(sample((await scrape(metrics)).text, 'kv_grpc_server_handled_total{method="Set",code="OK"}')).toBe(sets);

  const [victim] = workerPids(server);
  process.kill(victim, 'SIGKILL');
  // Scrapes back to back until the replacement serves: none fails, none waits long.
  const replaced = await pollUntil(
    'the replacement worker to answer scrapes',
    async () => {
      const { status, text, ms } = await scrape(metrics);
      expect(status).toBe(200);
      expect(ms).toBeLessThan(5000);
      // The killed worker's calls stay counted, before and after its replacement serves.
      expect(sample(text, 'kv_grpc_server_handled_total{method="Set",code="OK"}')).toBe(sets);
      const pids = workerPids(server!);
      const back = pids.length === 2 && !pids.includes(victim) && text.match(/^kv_process_up\{process="worker-\d"\} 1$/gm)?.length === 2;
      return back ? text : undefined;
    },
    30_000,
  );
  // The replacement's own calls add to them.
  await open[0].set('after', 1);
  await open[1].set('after', 2);
  const after = (await scrape(metrics)).text;
  expect(sample(after, 'kv_grpc_server_handled_total{method="Set",code="OK"}')).toBe(sets + 2);
  expect(sample(after, 'kv_grpc_server_handling_seconds_count{method="Set"}')).toBe(sets + 2);
  // The store's counts are the owner's: untouched.
  expect(sample(replaced, 'kv_store_commit_batch_writes_sum')).toBe(sets);
  expect((await scrape(metrics, '/readyz')).status).toBe(200);
});

test('/readyz stays ready while a killed worker is replaced: the other serves (probes from the moment of the kill)', async () => {
  server = await startServer({ args: ['--workers', '2', '--metrics-listen', '127.0.0.1:0'], env: { KV_LOG_LEVEL: 'info' } });
  const running = server;
  const metrics = running.metricsAddress as string;
  const answers: string[] = [];
  // A few kills (fewer than the restart limit): the supervisor may not have seen a worker end when a probe comes.
  for (let round = 0; round < 4; round++) {
    const [victim] = workerPids(running);
    const probes = Array.from({ length: 4 }, () => scrape(metrics, '/readyz'));
    process.kill(victim, 'SIGKILL');
    probes.push(scrape(metrics, '/readyz'), scrape(metrics, '/readyz'));
    await pollUntil(
      'the replacement worker to serve',
      () => {
        probes.push(scrape(metrics, '/readyz'));
        const pids = workerPids(running);
        const restarted = running.output().split('worker restarted').length - 1 > round;
        return restarted && pids.length === 2 && !pids.includes(victim) ? true : undefined;
      },
      30_000,
    );
    for (const { status, text } of await Promise.all(probes)) answers.push(`${status} ${text.trim()}`);
  }
  expect(answers.filter((answer) => answer !== '200 ready')).toEqual([]);
  expect(answers.length).toBeGreaterThan(20);
});

test('a worker that does not answer (stopped) costs a scrape a bounded wait: its counts are those it last said, and kv_process_up says so', async () => {
  server = await startServer({ args: ['--workers', '2', '--metrics-listen', '127.0.0.1:0'] });
  const metrics = server.metricsAddress as string;
  open = clients(server.address, CLIENTS);
  const sets = await callThroughEvery(open);
  expect(sample((await scrape(metrics)).text, 'kv_grpc_server_handled_total{method="Set",code="OK"}')).toBe(sets);
  const [stopped] = workerPids(server);
  process.kill(stopped, 'SIGSTOP');
  try {
    const { status, text, ms } = await scrape(metrics);
    expect(status).toBe(200);
    expect(ms).toBeLessThan(6000);
    // Not a drop that Prometheus would read as a reset.
    expect(sample(text, 'kv_grpc_server_handled_total{method="Set",code="OK"}')).toBe(sets);
    expect(sample(text, 'kv_process_up{process="owner"}')).toBe(1);
    expect(text.match(/^kv_process_up\{process="worker-\d"\} 0$/gm)).toHaveLength(1);
    expect(text.match(/^kv_process_up\{process="worker-\d"\} 1$/gm)).toHaveLength(1);
    const ready = await scrape(metrics, '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.text).toMatch(/^not ready: worker-\d did not answer within \d+ ms\n$/);
  } finally {
    process.kill(stopped, 'SIGCONT');
  }
  await pollUntil('ready again', async () => ((await scrape(metrics, '/readyz')).status === 200 ? true : undefined));
});

test('/readyz says the store is opening while the owner recovers a long log, /healthz already answers, then both are 200', async () => {
  const dataDir = makeTempDir();
  await writeBigLog(dataDir, 200_000);
  const child = spawnServer(['--listen', '127.0.0.1:0', '--data-dir', dataDir, '--workers', '2', '--metrics-listen', '127.0.0.1:0']);
  let stdout = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    const address = await pollUntil('the metrics port', () => METRICS_LINE.exec(stdout)?.[1], 30_000);
    const first = await scrape(address, '/readyz');
    if (!stdout.includes('kv-server listening')) {
      expect(first).toMatchObject({ status: 503, text: 'not ready: the store is opening\n' });
      expect((await scrape(address, '/healthz')).status).toBe(200);
    }
    await pollUntil('ready', async () => ((await scrape(address, '/readyz')).status === 200 ? true : undefined), 60_000);
    expect(stdout).toContain('kv-server listening');
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
});

describeWithEtcd()('--workers 2 --metrics-listen with --engine etcd', () => {
  let etcd: EtcdCluster | undefined;
  afterAll(async () => etcd?.stop());

  test('no owner: each worker reports the one store as it sees it, counted once; the calls are summed', async () => {
    etcd = await startEtcdCluster({ size: 1 });
    const prefix = `workers-metrics-${process.pid}/`;
    server = await startServer({
      args: [
        '--workers',
        '2',
        '--metrics-listen',
        '127.0.0.1:0',
        '--engine',
        'etcd',
        '--etcd-endpoints',
        etcd.endpoints.join(','),
        '--etcd-prefix',
        prefix,
      ],
    });
    open = clients(server.address, 4);
    let revision = 0;
    for (const [i, kv] of open.entries()) revision = await kv.set(`k${i}`, i);
    const text = await pollUntil('both workers to have seen the last write', async () => {
      const { text } = await scrape(server!.metricsAddress as string);
      return sample(text, 'kv_store_revision') === revision ? text : undefined;
    });
    expect(sample(text, 'kv_grpc_server_handled_total{method="Set",code="OK"}')).toBe(4);
    expect(sample(text, 'kv_store_writable')).toBe(1);
    expect(text).toMatch(/^kv_build_info\{version="[^"]+",engine="etcd"\} 1$/m);
    expect(text).not.toContain('process="owner"');
    expect((await scrape(server.metricsAddress as string, '/readyz')).status).toBe(200);
  });
});

test('the calls workers answer as their store owner dies count in the sums, though the workers then exit before any scrape', async () => {
  server = await startServer({ args: ['--workers', '2', '--metrics-listen', '127.0.0.1:0'] });
  const metrics = server.metricsAddress as string;
  open = Array.from(
    { length: 4 },
    (_, i) => new KvClient(server!.address, { retry: { attempts: 1 }, deadlineMs: 20_000, channelOptions: { 'grpc.kv_test_channel': i } }),
  );
  await Promise.all(open.map((kv, i) => kv.set(`held/${i}`, 0)));
  const [owner] = clusterChildren(server.child.pid as number)
    .filter((c) => c.role === 'owner')
    .map((c) => c.pid);
  process.kill(owner, 'SIGSTOP');
  const outcomes = open.map((kv, i) =>
    kv.set(`held/${i}`, 1).then(
      () => 'OK',
      (error: unknown) => (error as { code?: number }).code,
    ),
  );
  // Nothing to poll for: the writes wait in the workers, on the stopped owner, which is then killed under them.
  await new Promise((resolve) => setTimeout(resolve, 500));
  process.kill(owner, 'SIGKILL');
  expect(await Promise.all(outcomes)).toEqual([14, 14, 14, 14]);
  // Once more before any scrape: the next generation's workers serve four Sets, then their owner dies too.
  const running = server;
  const newOwner = await pollUntil('a new owner and two new workers', () => {
    const now = clusterChildren(running.child.pid as number);
    const next = now.find((c) => c.role === 'owner' && c.pid !== owner);
    return next !== undefined && now.filter((c) => c.role === 'worker').length === 2 ? next.pid : undefined;
  });
  await pollUntil('Sets through the new workers', async () => {
    const done = await Promise.all(
      open.map((kv, i) =>
        kv.set(`again/${i}`, 1).then(
          () => true,
          () => false,
        ),
      ),
    );
    return done.every(Boolean) ? true : undefined;
  });
  process.kill(newOwner, 'SIGKILL');
  await pollUntil('a third owner', () =>
    clusterChildren(running.child.pid as number).some((c) => c.role === 'owner' && c.pid !== owner && c.pid !== newOwner)
      ? true
      : undefined,
  );
  await pollUntil(
    'the four UNAVAILABLE answers in the sums',
    async () =>
      sample((await scrape(metrics)).text, 'kv_grpc_server_handled_total{method="Set",code="UNAVAILABLE"}') === 4 ? true : undefined,
    30_000,
  );
  // And the Sets before, by both generations of workers that ended, none scraped while it served.
  expect(sample((await scrape(metrics)).text, 'kv_grpc_server_handled_total{method="Set",code="OK"}')).toBeGreaterThanOrEqual(8);
});

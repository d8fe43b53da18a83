/**
 * The supervisor's side of --metrics-listen under --workers N: one port for
 * the whole server. A scrape asks every child that serves for its registry
 * (answer-reports.ts) over the cluster's IPC channel and sums them with
 * prom-client's AggregatorRegistry.aggregate, each metric by the aggregator
 * it was declared with (call-metrics.ts, store-metrics.ts). Counters and
 * histograms never go back (Prometheus would read a drop as a reset, and
 * count everything after it as new): a child that is late to a scrape
 * counts with what it said last, and one that ended with everything it had
 * said, added to what its replacement counts. A readiness
 * probe asks every child whether it serves. Every wait is bounded: a child
 * that is gone or late is left out of the answer (kv_process_up says which),
 * never waited for longer.
 */
import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, Gauge, Registry } from 'prom-client';
import type { MetricsSource } from '../metrics/metrics-server';
import { collectProcessMetrics, registerBuildInfo } from '../metrics/server-metrics';
import type { ClusterMembers } from './cluster-members';
import { type MetricsJson, type Report, type ReportRequest, OWNER_NAME, isReport } from './process-role';

/** Well under Prometheus' default scrape timeout (10 s): a worker busy with calls answers between them. */
const METRICS_ANSWER_MS = 3000;
/** Under the 1 s a Kubernetes probe waits by default. */
const READINESS_ANSWER_MS = 800;
const SUPERVISOR_NAME = 'supervisor';

export interface ClusterMetrics {
  source: MetricsSource;
  notReady: () => Promise<string | undefined>;
}

export function createClusterMetrics(members: ClusterMembers, version: string, engine: string): ClusterMetrics {
  const own = new Registry();
  collectProcessMetrics(own, SUPERVISOR_NAME);
  registerBuildInfo(own, version, engine);
  const ask = askChildren();

  /**
   * Per process name, the child that last said its counts and what they were (in a scrape's answer, or unasked before
   * it exits: a child's messages arrive in the order it sent them, so the last to arrive is the newest).
   */
  const lastSaid = new Map<string, { child: Worker; counts: MetricsJson }>();
  /** The counts of every child that has been replaced since the server started, summed: they stay in the sums. */
  let retired: MetricsJson = [];
  /**
   * Scrapes run one after the other (two Prometheus servers may scrape at once): each then reads and updates
   * `lastSaid` and `retired` from answers newer than the last one's, so no sum goes back and no replaced child is
   * added twice. A scrape waits at most METRICS_ANSWER_MS for the children, so one queued behind it still answers
   * within Prometheus' default timeout.
   */
  let scraping: Promise<unknown> = Promise.resolve();
  // A worker that exits on its own (its store owner gone) sends its last counts first: they stay in the sums.
  cluster.on('message', (child, message: unknown) => {
    if (!isReport(message) || !('metrics' in message) || message.final !== true) return;
    const name = members.nameOf(child);
    if (name === undefined) return;
    const counts = monotonic(message.metrics);
    // In turn with the scrapes, and noted as a scrape's answer is.
    scraping = scraping.then(() => note(name, child, counts)).catch(() => undefined);
  });
  /** `child` said `counts` (in slot `name`): if the slot had another child before, what that one counted is kept. */
  const note = async (name: string, child: Worker, counts: MetricsJson): Promise<void> => {
    const before = lastSaid.get(name);
    if (before !== undefined && before.child !== child) retired = await summed([retired, before.counts]);
    lastSaid.set(name, { child, counts });
  };
  const metrics = (): Promise<string> => {
    const scrape = scraping.then(scrapeOnce);
    scraping = scrape.catch(() => undefined);
    return scrape;
  };

  const scrapeOnce = async (): Promise<string> => {
    const serving = members.servingNow();
    const reports = await Promise.all(serving.map(([, child]) => ask(child, 'metrics', METRICS_ANSWER_MS)));
    const answered = new Set<string>();
    const registries: MetricsJson[] = [];
    for (const [i, report] of reports.entries()) {
      if (report === GONE || report === undefined || !('metrics' in report)) continue;
      const [name, child] = serving[i];
      answered.add(name);
      registries.push(report.metrics);
      await note(name, child, monotonic(report.metrics));
    }
    // Late to this scrape, or ended and not yet replaced: its counts as it last said them.
    for (const [name, { counts }] of lastSaid) if (!answered.has(name)) registries.push(counts);
    registries.push(retired);
    // A registry of this scrape alone: two scrapes at once each say who answered them.
    const scrape = new Registry();
    const up = new Gauge({
      name: 'kv_process_up',
      help: 'Per process of a --workers server: 1 if it answered this scrape, 0 if it is starting, being replaced or did not answer in time (its counters are then those of its last answer, its gauges missing from the sums)',
      labelNames: ['process'],
      registers: [scrape],
    });
    up.set({ process: SUPERVISOR_NAME }, 1);
    for (const name of members.names) up.set({ process: name }, answered.has(name) ? 1 : 0);
    registries.unshift(await own.getMetricsAsJSON(), await scrape.getMetricsAsJSON());
    return AggregatorRegistry.aggregate(registries.map(keepProcessSeries)).metrics();
  };

  const notReady = async (): Promise<string | undefined> => {
    if (members.phase === 'stopping') return 'shutting down';
    if (members.phase === 'starting') return members.storeOpen() ? 'the workers are starting' : 'the store is opening';
    const serving = members.servingNow();
    if (!serving.some(([name]) => name !== OWNER_NAME)) return 'no worker serves (a replacement is starting)';
    const reports = await Promise.all(serving.map(([, child]) => ask(child, 'readiness', READINESS_ANSWER_MS)));
    // A worker that ended as it was asked (killed; the supervisor had not yet seen it go) is being replaced, and the
    // others serve meanwhile: left out, as it is from the next probe on. The owner's end restarts the whole server.
    for (const [i, report] of reports.entries()) {
      const name = serving[i][0];
      if (report === GONE) {
        if (name === OWNER_NAME) return 'the store owner ended (the server restarts)';
        continue;
      }
      if (report === undefined) return `${name} did not answer within ${READINESS_ANSWER_MS} ms`;
      if ('error' in report) return `${name}: ${report.error}`;
      if ('notReady' in report && report.notReady !== undefined) return report.notReady;
    }
    if (serving.every(([name], i) => name === OWNER_NAME || reports[i] === GONE)) return 'no worker serves (a replacement is starting)';
    return undefined;
  };

  return { source: { metrics, contentType: own.contentType }, notReady };
}

/**
 * The process metrics (prom-client's defaults) carry a `process` label: one
 * series per process, RSS and CPU included, rather than prom-client's
 * cluster defaults (summed, averaged, or the start time omitted). Each label
 * set then comes from one process, and 'first' keeps it as it is.
 */
function keepProcessSeries(registry: MetricsJson): MetricsJson {
  return registry.map((metric) =>
    metric.values.length > 0 && metric.values.every((value) => value.labels.process !== undefined)
      ? { ...metric, aggregator: 'first' }
      : metric,
  );
}

/**
 * The counters and histograms of a child's registry that are summed over the
 * children (not its per-process series): what must not go back when it is
 * late or gone.
 */
function monotonic(registry: MetricsJson): MetricsJson {
  return registry.filter((metric) => {
    // prom-client types `type` as a numeric enum; it is the type's name ('counter', ...), as /metrics prints it.
    const type = metric.type as unknown as string;
    return (type === 'counter' || type === 'histogram') && !metric.values.some((value) => value.labels.process !== undefined);
  });
}

/** Registries summed into one, as a scrape sums them. */
async function summed(registries: MetricsJson[]): Promise<MetricsJson> {
  return await AggregatorRegistry.aggregate(registries).getMetricsAsJSON();
}

/** What asking a child that ended (or whose channel closed) before it answered gives. */
const GONE = 'gone';

/** Asks a child for a report; GONE if it ended before answering, undefined if it has not answered within `timeoutMs`. */
function askChildren(): (child: Worker, what: ReportRequest['what'], timeoutMs: number) => Promise<Report | typeof GONE | undefined> {
  let nextId = 0;
  const pending = new Map<number, { child: Worker; settle: (report: Report | typeof GONE | undefined) => void }>();
  cluster.on('message', (child, message: unknown) => {
    if (!isReport(message)) return;
    const asked = pending.get(message.id);
    if (asked?.child === child) asked.settle(message);
  });
  const gone = (child: Worker): void => {
    for (const asked of [...pending.values()]) if (asked.child === child) asked.settle(GONE);
  };
  cluster.on('disconnect', gone);
  cluster.on('exit', gone);

  return (child, what, timeoutMs) =>
    new Promise((resolve) => {
      const id = nextId++;
      const settle = (report: Report | typeof GONE | undefined): void => {
        clearTimeout(timer);
        pending.delete(id);
        resolve(report);
      };
      const timer = setTimeout(() => settle(undefined), timeoutMs);
      if (!child.isConnected()) return settle(GONE);
      pending.set(id, { child, settle });
      const request: ReportRequest = { kind: 'report-request', id, what };
      // With a callback, a channel that closed meanwhile is an error here, not an 'error' event nobody handles.
      child.send(request, undefined, {}, (error) => {
        if (error !== null) settle(GONE);
      });
    });
}

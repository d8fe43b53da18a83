/**
 * A child's side of --metrics-listen under --workers N: the supervisor
 * serves the one metrics port and asks each child, over the cluster's IPC
 * channel, for its metrics or its readiness; the child answers from its
 * own registry and its own view of whether it serves.
 */
import type { Registry } from 'prom-client';
import { type Report, isReportRequest } from './process-role';

/**
 * Answers the supervisor's requests from now on. Returns what sends the supervisor this child's last counts unasked,
 * before it exits on its own (the supervisor keeps them in the sums: calls answered after the last scrape count too).
 */
export function answerReports(registry: Registry, notReady: () => string | undefined): () => Promise<void> {
  process.on('message', (message: unknown) => {
    if (!isReportRequest(message)) return;
    const { id } = message;
    if (message.what === 'readiness') return send({ kind: 'report', id, notReady: notReady() });
    registry.getMetricsAsJSON().then(
      (metrics) => send({ kind: 'report', id, metrics }),
      (error: unknown) => send({ kind: 'report', id, error: error instanceof Error ? error.message : String(error) }),
    );
  });
  return async () => {
    const metrics = await registry.getMetricsAsJSON();
    if (!process.connected) return;
    await new Promise<void>((resolve) =>
      process.send?.({ kind: 'report', id: -1, metrics, final: true } satisfies Report, undefined, {}, () => resolve()),
    );
  };
}

function send(report: Report): void {
  // A supervisor that is gone asks for nothing more; the child stops on its own (listenForSupervisorStop).
  if (process.connected) process.send?.(report, undefined, {}, () => undefined);
}

/**
 * A child's side of --metrics-listen under --workers N: the supervisor
 * serves the one metrics port and asks each child, over the cluster's IPC
 * channel, for its metrics or its readiness; the child answers from its
 * own registry and its own view of whether it serves.
 */
import type { Registry } from 'prom-client';
import { type Report, isReportRequest } from './process-role';

export function answerReports(registry: Registry, notReady: () => string | undefined): void {
  process.on('message', (message: unknown) => {
    if (!isReportRequest(message)) return;
    const { id } = message;
    if (message.what === 'readiness') return send({ kind: 'report', id, notReady: notReady() });
    registry.getMetricsAsJSON().then(
      (metrics) => send({ kind: 'report', id, metrics }),
      (error: unknown) => send({ kind: 'report', id, error: error instanceof Error ? error.message : String(error) }),
    );
  });
}

function send(report: Report): void {
  // A supervisor that is gone asks for nothing more; the child stops on its own (listenForSupervisorStop).
  if (process.connected) process.send?.(report, undefined, {}, () => undefined);
}

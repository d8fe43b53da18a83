/** A server's Watch streams as its /metrics counts them: open, watching, and how they ended. */
import { pollUntil } from './temp-dirs';

export interface WatchGauges {
  open: number;
  watchers: number;
  cancelled: number;
  deadline: number;
}

export async function scrapeWatchGauges(metricsAddress: string): Promise<WatchGauges> {
  const text = await (await fetch(`http://${metricsAddress}/metrics`)).text();
  const sample = (pattern: RegExp): number => Number(pattern.exec(text)?.[1] ?? 0);
  return {
    open: sample(/^kv_grpc_server_open_streams\{method="Watch"\} (\d+)$/m),
    watchers: sample(/^kv_store_watchers (\d+)$/m),
    cancelled: sample(/^kv_grpc_server_handled_total\{method="Watch",code="CANCELLED"\} (\d+)$/m),
    deadline: sample(/^kv_grpc_server_handled_total\{method="Watch",code="DEADLINE_EXCEEDED"\} (\d+)$/m),
  };
}

/** Waits until the one Watch that `before` did not have is open and watching. */
export async function untilWatching(metricsAddress: string, before: WatchGauges): Promise<void> {
  await pollUntil('the Watch to be open', async () => {
    const now = await scrapeWatchGauges(metricsAddress);
    return now.open === before.open + 1 && now.watchers === before.watchers + 1 ? true : undefined;
  });
}

/** Waits until the Watches and watchers are back to `before`'s counts: the gauges then. */
export function untilWatchClosed(metricsAddress: string, before: WatchGauges): Promise<WatchGauges> {
  return pollUntil('the Watch to be counted closed', async () => {
    const now = await scrapeWatchGauges(metricsAddress);
    return now.open === before.open && now.watchers === before.watchers ? now : undefined;
  });
}

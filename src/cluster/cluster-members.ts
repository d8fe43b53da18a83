/**
 * What the supervisor knows of its processes, for the metrics listener of
 * --workers N: which children serve now (said ready and have not exited),
 * by their stable names ("owner", "worker-1".."worker-N"), and whether the
 * server as a whole is starting, serving or stopping.
 */
import type { Worker } from 'node:cluster';
import { OWNER_NAME, workerName } from './process-role';

/** 'starting' also while the whole server restarts after its store owner ended. */
export type ClusterPhase = 'starting' | 'serving' | 'stopping';

export class ClusterMembers {
  phase: ClusterPhase = 'starting';
  /** Every child the server runs when whole, in the order metrics list them. */
  readonly names: readonly string[];
  private readonly serving = new Map<string, Worker>();

  constructor(
    readonly hasOwner: boolean,
    workers: number,
  ) {
    this.names = [...(hasOwner ? [OWNER_NAME] : []), ...Array.from({ length: workers }, (_, i) => workerName(i + 1))];
  }

  ready(name: string, child: Worker): void {
    this.serving.set(name, child);
  }

  /** `child` exited; the slot may already belong to its replacement. */
  ended(name: string, child: Worker): void {
    if (this.serving.get(name) === child) this.serving.delete(name);
  }

  /** The name of `child` while it serves. */
  nameOf(child: Worker): string | undefined {
    for (const [name, serving] of this.serving) if (serving === child) return name;
    return undefined;
  }

  /** The children serving now, by name. */
  servingNow(): Array<[name: string, child: Worker]> {
    return this.names.flatMap((name) => {
      const child = this.serving.get(name);
      return child === undefined || child.isDead() ? [] : [[name, child] as [string, Worker]];
    });
  }

  /** The store is open: its owner serves (file engine), or a worker does (etcd: each worker opens its own). */
  storeOpen(): boolean {
    return this.hasOwner ? this.serving.has(OWNER_NAME) : this.serving.size > 0;
  }
}

/**
 * Which part a kv-server process plays under --workers N (N > 1): the
 * supervisor (the process the operator started), the store owner (holds
 * the data directory) or a worker (serves gRPC on the shared port). The
 * supervisor tells its children their role, and the owner's socket, in the
 * environment; the messages they exchange over Node's IPC channel are here.
 */
import cluster, { type Worker } from 'node:cluster';
import type { Registry } from 'prom-client';
import type { SecurityFile } from '../security/server-security';
import type { SecurityMaterial } from './security-material';

/** How long a worker that lost its store owner gives its calls to be answered (they fail at once; watches end). */
export const OWNER_LOST_GRACE_MS = 1000;

export type ProcessRole = 'single' | 'supervisor' | 'owner' | 'worker';

const ROLE_ENV = 'KV_PROCESS_ROLE';
const OWNER_SOCKET_ENV = 'KV_OWNER_SOCKET';
/** A worker started after the first binds the port the first one got (port 0 picks one only once). */
const LISTEN_ENV = 'KV_WORKER_LISTEN';
const HTTP_LISTEN_ENV = 'KV_WORKER_HTTP_LISTEN';
/** Which worker this is, 1 to N: a replacement takes the slot of the worker it replaces, so its metrics keep one name. */
const SLOT_ENV = 'KV_WORKER_SLOT';

/** The role of a child the supervisor started; 'single' for a process an operator started (it may become the supervisor). */
export function childRole(): 'single' | 'owner' | 'worker' {
  if (!cluster.isWorker) return 'single';
  const role = process.env[ROLE_ENV];
  if (role === 'owner' || role === 'worker') return role;
  throw new Error(`${ROLE_ENV} is ${JSON.stringify(role)}: a cluster child must be told its role`);
}

/** The name of a child in metrics and /readyz: "owner", or "worker-" and its slot. */
export function childName(role: 'owner' | 'worker'): string {
  return role === 'owner' ? OWNER_NAME : workerName(Number(process.env[SLOT_ENV]));
}

export const OWNER_NAME = 'owner';

export function workerName(slot: number): string {
  return `worker-${slot}`;
}

export function ownerSocketPath(): string {
  const socketPath = process.env[OWNER_SOCKET_ENV];
  if (socketPath === undefined) throw new Error(`${OWNER_SOCKET_ENV} is not set`);
  return socketPath.startsWith('@') ? `\0${socketPath.slice(1)}` : socketPath;
}

/** An abstract socket's leading NUL cannot travel in the environment: written '@', as `ss` shows it. */
function socketEnvValue(socketPath: string): string {
  return socketPath.startsWith('\0') ? `@${socketPath.slice(1)}` : socketPath;
}

export interface WorkerAddresses {
  listen: string;
  httpListen: string | undefined;
}

/** The addresses the supervisor pinned for this worker, if it did. */
export function pinnedAddresses(): Partial<WorkerAddresses> {
  return { listen: process.env[LISTEN_ENV], httpListen: process.env[HTTP_LISTEN_ENV] };
}

export function ownerEnv(socketPath: string): Record<string, string> {
  return { [ROLE_ENV]: 'owner', [OWNER_SOCKET_ENV]: socketEnvValue(socketPath) };
}

export function workerEnv(slot: number, socketPath: string | undefined, pinned: Partial<WorkerAddresses>): Record<string, string> {
  const env: Record<string, string> = { [ROLE_ENV]: 'worker', [SLOT_ENV]: String(slot) };
  if (socketPath !== undefined) env[OWNER_SOCKET_ENV] = socketEnvValue(socketPath);
  if (pinned.listen !== undefined) env[LISTEN_ENV] = pinned.listen;
  if (pinned.httpListen !== undefined) env[HTTP_LISTEN_ENV] = pinned.httpListen;
  return env;
}

/** Child to supervisor. */
export type ChildMessage =
  | { kind: 'owner-ready'; where: string }
  | { kind: 'worker-ready'; port: number; httpPort: number | undefined; where: string }
  /** Why the child cannot start, one line for stderr: the supervisor prints each line once, however many workers send it. */
  | { kind: 'failed'; line: string };

/** Supervisor to child: drain and exit. */
/**
 * Sent to the store owner as the server's stop begins: it is asked to stop only once the workers have drained, and
 * must not take a SIGTERM of its own that came with the supervisor's (systemd signals every process of a unit) for
 * one sent to it alone.
 */
export interface StoppingNotice {
  kind: 'stopping';
}

export interface StopMessage {
  kind: 'stop';
  /** The signal the supervisor was stopped by (what the child's log names). */
  signal: NodeJS.Signals;
  /** When it was not a signal that asked for the stop (the supervisor gave up): what the child's log names instead of `signal`. */
  reason?: string;
}

/**
 * Supervisor to child, after a SIGHUP: serve with this material from now on,
 * the contents of the files the supervisor read and found good (a file it
 * found bad is not in it). Workers act on it; the store owner serves no calls.
 */
export interface ReloadMessage {
  kind: 'reload';
  files: SecurityFile[];
  material: SecurityMaterial;
}

export function isReloadMessage(message: unknown): message is ReloadMessage {
  return (message as { kind?: unknown } | null)?.kind === 'reload';
}

/** Worker to supervisor, as it starts: the TLS and auth material to serve with (it never reads the files itself). */
export interface SecurityRequest {
  kind: 'security-request';
}

export function isSecurityRequest(message: unknown): message is SecurityRequest {
  return (message as { kind?: unknown } | null)?.kind === 'security-request';
}

/** Supervisor to worker, the answer: the material of every file, as last found good. */
export interface SecurityAnswer {
  kind: 'security';
  material: SecurityMaterial;
}

export function isSecurityAnswer(message: unknown): message is SecurityAnswer {
  return (message as { kind?: unknown } | null)?.kind === 'security';
}

/** Supervisor to child, for --metrics-listen: its metrics (prom-client's JSON), or why it is not ready. */
export interface ReportRequest {
  kind: 'report-request';
  id: number;
  what: 'metrics' | 'readiness';
}

/** A registry's metrics as prom-client's AggregatorRegistry.aggregate() takes them. */
export type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

/** Child to supervisor, the answer to the ReportRequest of the same id. */
export type Report =
  /** `final`: sent unasked (id -1) by a worker about to exit, with the counts of the calls it answered last. */
  | { kind: 'report'; id: number; metrics: MetricsJson; final?: true }
  | { kind: 'report'; id: number; notReady: string | undefined }
  | { kind: 'report'; id: number; error: string };

export function isReportRequest(message: unknown): message is ReportRequest {
  return (message as { kind?: unknown } | null)?.kind === 'report-request';
}

export function isReport(message: unknown): message is Report {
  return (message as { kind?: unknown } | null)?.kind === 'report';
}

export function isChildMessage(message: unknown): message is ChildMessage {
  const kind = (message as { kind?: unknown } | null)?.kind;
  return kind === 'owner-ready' || kind === 'worker-ready' || kind === 'failed';
}

/** Tells the supervisor; a child without one (impossible under cluster) has no one to tell. */
export function tellSupervisor(message: ChildMessage): void {
  process.send?.(message);
}

/**
 * Tells a child, if it is still connected. A child that is ending (its
 * channel closing under the send) is not an error here: its 'exit' is what
 * the supervisor acts on. Without the callback a failed send is an 'error'
 * event on the Worker, and unhandled it ended the supervisor with exit 1
 * (seen on SIGTERM just after the store owner died, its workers exiting).
 */
export function sendToChild(child: Worker, message: StopMessage | StoppingNotice | ReloadMessage | SecurityAnswer): void {
  if (child.isConnected()) child.send(message, undefined, {}, () => undefined);
}

/**
 * What the transport adapters (grpc-call.ts) report about calls, for the
 * server's metrics (src/metrics implements it). One MethodObserver per
 * method, made once when the service is built, so a call costs a few
 * increments and one histogram observation: no labels looked up, no strings built.
 */
import type { status } from '@grpc/grpc-js';

export interface MethodObserver {
  /** A unary call arrived; returns its start time, to give back to answered(). */
  started(): number;
  /** A unary call was answered with `code`. */
  answered(startedAt: number, code: status): void;
  /** A streaming call opened. */
  streamOpened(): void;
  /** A streaming call ended with `code` (CANCELLED when the client went away). */
  streamClosed(code: status): void;
}

export interface CallObserver {
  /** The observer of one method, by its name in the service ("Get", "Watch"). */
  method(name: string): MethodObserver;
}

export const NO_METHOD_OBSERVER: MethodObserver = {
  started: () => 0,
  answered: () => undefined,
  streamOpened: () => undefined,
  streamClosed: () => undefined,
};

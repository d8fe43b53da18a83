#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, loadConfig, usage, type Config } from './config';
import { createLogger } from './logger';
import { describeStoreLocation, openConfiguredStore } from './open-store';
import { createServer } from './server/create-server';
import { StoreError } from './store/errors';
import { LockNotReleasedError } from './store/file/data-dir-lock';

/** Exit codes: 0 clean stop, 1 could not start or stop cleanly, 2 bad flags or environment. */
async function main(): Promise<number> {
  let config: Config | 'help' | 'version';
  try {
    config = loadConfig(process.argv.slice(2), process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`kv-server: ${error.message}\n\n${usage()}\n`);
    return 2;
  }
  if (config === 'help') {
    process.stdout.write(`${usage()}\n`);
    return 0;
  }
  if (config === 'version') {
    // package.json is one level above both src/ and dist/.
    const { version } = JSON.parse(readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { version: string };
    process.stdout.write(`kv-server ${version}\n`);
    return 0;
  }

  const logger = createLogger(config.logLevel);
  let store;
  let where;
  try {
    ({ store, where } = await openConfiguredStore(config, logger));
  } catch (error) {
    // A locked, damaged or unusable data directory, or an etcd that does not answer, is the operator's to fix: one line, no stack.
    if (error instanceof StoreError || isSystemError(error)) {
      process.stderr.write(`kv-server: cannot open the store in ${describeStoreLocation(config)}: ${error.message}\n`);
      return 1;
    }
    throw error;
  }

  const server = createServer({ store, logger, maxKeyBytes: config.maxKeyBytes, maxValueBytes: config.maxValueBytes });
  let port: number;
  try {
    port = await server.listen(config.listen);
  } catch (error) {
    await store.close();
    process.stderr.write(`kv-server: cannot listen on ${config.listen}: ${(error as Error).message}\n`);
    return 1;
  }
  const host = config.listen.slice(0, config.listen.lastIndexOf(':'));
  process.stdout.write(`kv-server listening on ${host}:${port} (${where})\n`);

  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  logger.info({ signal, graceMs: config.shutdownGraceMs }, 'shutting down: finishing calls in flight');
  // A second signal means "now": skip the grace period. Under `npm start`, Ctrl-C
  // arrives twice at once (from the terminal, and forwarded by npm): a repeat
  // within a second is that echo, not impatience.
  const firstSignalAt = Date.now();
  const impatient = (): void => {
    if (Date.now() - firstSignalAt > 1000) process.exit(1);
  };
  process.on('SIGTERM', impatient);
  process.on('SIGINT', impatient);

  await server.shutdown(config.shutdownGraceMs);
  try {
    await store.close();
  } catch (error) {
    if (!(error instanceof LockNotReleasedError)) throw error;
    process.stderr.write(`kv-server: stopped, but ${error.message}\n`);
    return 1;
  }
  logger.info(config.engine === 'etcd' ? 'stopped; etcd connections closed' : 'stopped; data directory released');
  return 0;
}

/** An error from the operating system (ENOTDIR, EACCES, ENOSPC...), as opposed to a bug. */
function isSystemError(error: unknown): error is NodeJS.ErrnoException {
  return (
    error instanceof Error &&
    typeof (error as NodeJS.ErrnoException).code === 'string' &&
    typeof (error as NodeJS.ErrnoException).syscall === 'string'
  );
}

main().then(
  (code) => {
    process.exitCode = code;
    // Everything is closed by now; if some handle still holds the loop open, do not hang a deploy over it.
    setTimeout(() => process.exit(code), 2000).unref();
  },
  (error: unknown) => {
    process.stderr.write(`kv-server: unexpected failure: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  },
);

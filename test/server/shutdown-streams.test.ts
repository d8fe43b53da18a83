/**
 * What a drain does to streaming calls: a Backup is a finite call, so like
 * a unary one it may finish within --shutdown-grace-ms (on the gRPC port,
 * the HTTP port and under --workers), and is cancelled only when the grace
 * runs out; with no grace (0) at once. Each backup here is held in flight by
 * its client, which stops reading (HTTP/2 flow control then stops the
 * server's handler) until the server drains.
 */
import { writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import path from 'node:path';
import { Writable } from 'node:stream';
import { Client, credentials, type ServiceError, status } from '@grpc/grpc-js';
import { KvClient, KvError, verifyBackupFile } from '@kv/client';
import { type GrantLeaseResponse, KeyValueServiceClient } from '../../src/gen/kv/v1/kv';
import { silentLogger } from '../../src/logger';
import { createLogFile, LogWriter } from '../../src/store/file/log-writer';
import { REPORT_DRAINED_LOOP, type RunningServer, killCluster, startServer } from '../support/server-process';
import { makeTempDir, pollUntil } from '../support/temp-dirs';

/**
 * Enough bytes (40 MB) that a backup cannot fit in what lies between the
 * server's handler and a client that stops reading: the flow-control
 * windows, the socket buffers, and the 16 messages of up to 1 MiB each
 * grpc-js's client stream buffers.
 */
const KEYS = 8_000;
const VALUE_JSON = JSON.stringify('v'.repeat(5_000));

const MAGIC = Buffer.from('KVBACKUP', 'latin1');

/**
 * A backup destination that takes the first bytes (the server is streaming
 * by then) and then acknowledges nothing until released: the SDK stops
 * reading the call, and the server's handler waits.
 */
class HeldSink extends Writable {
  readonly chunks: Buffer[] = [];
  private bytes = 0;
  private held: (() => void) | undefined;
  private released = false;

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    if (this.released || !this.serverAnswered) done();
    else this.held = done;
  }

  release(): void {
    this.released = true;
    this.held?.();
  }

  get serverAnswered(): boolean {
    return this.bytes >= 64 * 1024;
  }
}

/** A data directory holding KEYS keys of 5 kB each, its log written directly (no server, no fsync per write). */
async function bigStore(): Promise<string> {
  const dataDir = makeTempDir();
  const writer = new LogWriter(dataDir, createLogFile(dataDir, 1, 0), 'never', 1000, silentLogger);
  for (let revision = 1; revision <= KEYS; revision++) {
    const entry = { valueJson: VALUE_JSON, createRevision: revision, modRevision: revision, version: 1, lease: 0 };
    writer.append([{ type: 'set', key: `key/${revision}`, revision, entry, prev: undefined }]);
  }
  await writer.close();
  return dataDir;
}

const running: RunningServer[] = [];
afterEach(async () => {
  for (const server of running.splice(0)) await killCluster(server);
});

async function serve(dataDir: string, args: string[]): Promise<RunningServer> {
  const server = await startServer({ dataDir, args, env: { KV_LOG_LEVEL: 'info' }, nodeArgs: ['--import', REPORT_DRAINED_LOOP] });
  running.push(server);
  return server;
}

/** Starts a gRPC backup into a held sink and waits until the server is streaming it. */
async function heldBackup(server: RunningServer): Promise<{ sink: HeldSink; done: Promise<unknown>; kv: KvClient }> {
  const kv = new KvClient(server.address);
  const sink = new HeldSink();
  const done = kv.backup(sink).then(
    (summary) => summary,
    (error: unknown) => error,
  );
  await pollUntil('the backup to stream', () => (sink.serverAnswered ? true : undefined));
  return { sink, done, kv };
}

async function drainStarted(server: RunningServer): Promise<void> {
  await pollUntil('the drain to start', () => (server.output().includes('shutting down') ? true : undefined));
}

/** A gRPC backup held in flight, SIGTERM, and the backup let go once the drain has started: how it ended, its bytes, and the exit. */
async function backupThroughDrain(server: RunningServer): Promise<{ summary: unknown; sink: HeldSink; exited: Promise<number | null> }> {
  const { sink, done, kv } = await heldBackup(server);
  const exited = server.stop('SIGTERM');
  await drainStarted(server);
  sink.release();
  const summary = await done;
  kv.close();
  return { summary, sink, exited };
}

/** The backup's bytes as a file, checked end to end (order, counts, the trailer's checksum). */
function checkedFile(bytes: Buffer): ReturnType<typeof verifyBackupFile> {
  const file = path.join(makeTempDir('kv-backup-'), 'kv.backup');
  writeFileSync(file, bytes);
  return verifyBackupFile(file);
}

test('a gRPC backup in flight at SIGTERM finishes within the grace, whole and valid, and the server then exits 0', async () => {
  const server = await serve(await bigStore(), ['--shutdown-grace-ms', '60000']);
  const { summary, sink, exited } = await backupThroughDrain(server);
  expect(summary).toMatchObject({ keyCount: KEYS, revision: KEYS });
  expect(checkedFile(Buffer.concat(sink.chunks))).toMatchObject({ keyCount: KEYS, revision: KEYS });
  expect(await exited).toBe(0);
  expect(server.output()).not.toContain('grace period over');
  expect(server.output()).toContain('stopped; data directory released');
});

test('under --workers a backup in flight at SIGTERM finishes within the grace', async () => {
  const server = await serve(await bigStore(), ['--workers', '2', '--shutdown-grace-ms', '60000']);
  const { summary, sink, exited } = await backupThroughDrain(server);
  expect(summary).toMatchObject({ keyCount: KEYS, revision: KEYS });
  expect(checkedFile(Buffer.concat(sink.chunks))).toMatchObject({ keyCount: KEYS });
  expect(await exited).toBe(0);
});

test('a backup over the HTTP port (Connect, HTTP/2) in flight at SIGTERM finishes within the grace', async () => {
  const server = await serve(await bigStore(), ['--http-listen', '127.0.0.1:0', '--shutdown-grace-ms', '60000']);
  const session = http2.connect(`http://${server.httpAddress}`);
  session.on('error', () => undefined);
  const stream = session.request({
    ':method': 'POST',
    ':path': '/kv.v1.KeyValueService/Backup',
    'content-type': 'application/connect+proto',
    'connect-protocol-version': '1',
  });
  // One enveloped message: flags 0, length 0 (an empty BackupRequest).
  stream.end(Buffer.alloc(5));
  // Nothing is read until the drain has started: the server's writes wait for the window.
  await new Promise((resolve) => stream.once('response', resolve));
  const exited = server.stop('SIGTERM');
  await drainStarted(server);
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  session.close();

  // Connect's envelopes: a flags byte and a 4-byte big-endian length; flag 2 marks the end-of-stream message.
  const body = Buffer.concat(chunks);
  const frames: Buffer[] = [MAGIC];
  let end: unknown;
  for (let at = 0; at < body.length;) {
    const flags = body[at];
    const length = body.readUInt32BE(at + 1);
    const message = body.subarray(at + 5, at + 5 + length);
    at += 5 + length;
    if ((flags & 2) !== 0) {
      end = JSON.parse(message.toString());
      continue;
    }
    const size = Buffer.alloc(4);
    size.writeUInt32LE(message.length);
    frames.push(size, message);
  }
  expect(end).toEqual({});
  expect(checkedFile(Buffer.concat(frames))).toMatchObject({ keyCount: KEYS, revision: KEYS });
  expect(await exited).toBe(0);
});

test('a backup that outlasts the grace is cancelled when it runs out, and the process ends with nothing left open', async () => {
  const server = await serve(await bigStore(), ['--shutdown-grace-ms', '1000']);
  const { sink, done, kv } = await heldBackup(server);
  expect(await server.stop('SIGTERM')).toBe(0);
  expect(server.output()).toContain('grace period over; cancelling calls still in flight');
  expect(server.output()).toContain('stopped; data directory released');
  expect(server.output()).toContain('event loop drained');
  sink.release();
  expect(await done).toBeInstanceOf(KvError);
  kv.close();
});

test('--shutdown-grace-ms 0 cancels a backup in flight at once', async () => {
  const server = await serve(await bigStore(), ['--shutdown-grace-ms', '0']);
  const { sink, done, kv } = await heldBackup(server);
  // The client still reads nothing: the server does not wait for it.
  expect(await server.stop('SIGTERM')).toBe(0);
  expect(server.output()).toContain('shutting down: cancelling calls in flight (no grace period)');
  expect(server.output()).not.toContain('grace period over');
  expect(server.output()).toContain('event loop drained');
  sink.release();
  expect(await done).toBeInstanceOf(KvError);
  kv.close();
});

test('streams that last until their client stops them (KeepAlive, Watch, reflection as grpcurl holds it; over the HTTP port too) are ended as the drain starts', async () => {
  const server = await serve(makeTempDir(), ['--shutdown-grace-ms', '120000', '--http-listen', '127.0.0.1:0']);
  // Raw calls without deadlines: nothing but the server ends them.
  const client = new KeyValueServiceClient(server.address, credentials.createInsecure());
  const { id } = await new Promise<GrantLeaseResponse>((resolve, reject) =>
    client.grantLease({ ttlMs: 60_000 }, (error, response) => (error ? reject(error) : resolve(response))),
  );
  const ended = (call: { once(event: 'error', listener: (error: ServiceError) => void): unknown }): Promise<status> =>
    new Promise((resolve) => call.once('error', (error) => resolve(error.code)));
  const keepAlive = client.keepAlive();
  const keepAliveEnded = ended(keepAlive);
  const watch = client.watch({ prefix: 'a/', startRevision: 0, prevEntry: false, fragment: false });
  const watchEnded = ended(watch);
  keepAlive.write({ id });
  // A reflection stream left open after one answer, as grpcurl keeps it for its whole run (list_services: field 7).
  const reflection = new Client(server.address, credentials.createInsecure());
  const reflectionCall = reflection.makeBidiStreamRequest(
    '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo',
    (bytes: Buffer) => bytes,
    (bytes: Buffer) => bytes,
  );
  const reflectionEnded = ended(reflectionCall);
  reflectionCall.write(Buffer.from([0x3a, 0]));
  await Promise.all([
    new Promise((resolve) => keepAlive.once('data', resolve)),
    new Promise((resolve) => watch.once('data', resolve)),
    new Promise((resolve) => reflectionCall.once('data', resolve)),
  ]);

  const session = http2.connect(`http://${server.httpAddress}`);
  session.on('error', () => undefined);
  const httpWatch = session.request({
    ':method': 'POST',
    ':path': '/kv.v1.KeyValueService/Watch',
    'content-type': 'application/connect+json',
    'connect-protocol-version': '1',
  });
  const request = Buffer.from(JSON.stringify({ prefix: 'b/' }));
  const envelope = Buffer.alloc(5);
  envelope.writeUInt32BE(request.length, 1);
  httpWatch.end(Buffer.concat([envelope, request]));
  let httpBody = '';
  httpWatch.on('data', (chunk: Buffer) => (httpBody += chunk.toString('latin1')));
  // The first message (where the watch starts) comes at once.
  await pollUntil('the HTTP watch to start', () => (httpBody.length > 0 ? true : undefined));
  const httpWatchEnded = new Promise((resolve) => httpWatch.once('end', resolve));

  const exited = server.stop('SIGTERM');
  expect(await keepAliveEnded).toBe(status.UNAVAILABLE);
  expect(await watchEnded).toBe(status.UNAVAILABLE);
  expect(await reflectionEnded).toBe(status.UNAVAILABLE);
  await httpWatchEnded;
  expect(httpBody).toContain('"code":"unavailable"');
  expect(await exited).toBe(0);
  expect(server.output()).not.toContain('grace period over');
  session.destroy();
  client.close();
  reflection.close();
});

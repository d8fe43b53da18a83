/**
 * The keys of a large checkpoint, written by a worker thread: most of a
 * checkpoint's work (copying every unchanged entry of the table before,
 * finding the changed keys in it, hashing the new table) then runs beside
 * the thread that serves writes and reads instead of taking half of it.
 *
 * The table before and the new one live in shared memory (key-table.ts
 * sharedBytes), so neither is copied between the threads. What this thread
 * still does is encode the entries the view's layers changed (JS objects the
 * worker cannot read) as CHANGES, newest layer first, a chunk of about 1 MiB
 * at a time, sharing the event loop as the in-thread writer does:
 *   0  1  1 = set, then the ENTRY (checkpoint-codec.ts);
 *         0 = deleted, then the key's length (u32) and the key (UTF-8)
 * The worker opens the file ('wx'), writes its header, the leases and the
 * KEYS blocks, closes it without a sync, and sends back the new table; the
 * caller appends the history and the END record and syncs the whole file
 * (write-checkpoint.ts). A stopped compaction terminates the worker; the
 * partial .tmp file is then removed as after any failed attempt.
 *
 * This module is also the worker's entry point: loaded in a worker thread
 * given a job, it runs the job.
 */
import fs from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { type ResourceLimits, Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { ENTRY_HEADER_SIZE, entrySize, writeEntry } from './checkpoint-codec';
import { type BetweenBlocks, KEYS_PER_PAUSE, type KeyBlocks, type KeysWritten, writeKeys } from './key-blocks';
import { KeyTable, type KeyTableParts } from './key-table';
import type { IndexSnapshot } from './store-index';

const JOB_KIND = 'kv-checkpoint-keys';
/** Bytes per CHANGES chunk (an entry larger than that gets a chunk of its own). */
const CHUNK_BYTES = 1024 * 1024;
/** How often the caller looks whether the compaction was stopped while the worker runs, ms. */
const STOP_POLL_MS = 20;

interface KeysJob {
  kind: typeof JOB_KIND;
  filePath: string;
  revision: number;
  leases: Array<{ id: number; ttlMs: number; private: boolean }>;
  /** The most keys the new table may hold (the view's count). */
  capacity: number;
  base: KeyTableParts;
  changes: Uint8Array[];
}

/**
 * The worker thread did not do its job for a reason of its own, not the
 * disk's: it could not start, ran out of memory, exited without an answer,
 * or threw something other than an I/O error. The caller writes the
 * checkpoint on its own thread instead.
 */
export class CheckpointWorkerFailed extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'CheckpointWorkerFailed';
  }
}

type KeysReply =
  | { ok: true; bytes: number; count: number; table: KeyTableParts }
  | {
      ok: false;
      message: string;
      stack: string | undefined;
      io: Partial<Pick<NodeJS.ErrnoException, 'code' | 'errno' | 'syscall' | 'path'>>;
    };

/**
 * Writes the head of the checkpoint of `view` (header, leases, KEYS blocks)
 * to `filePath`, which must not exist, on a worker thread; returns the keys
 * written, their table, and the bytes of the file so far. `stopping` is
 * asked every few ms while the worker runs: once it says so, the worker is
 * terminated and `betweenBlocks` called (it throws).
 */
export async function writeKeysOffThread(
  filePath: string,
  view: IndexSnapshot,
  betweenBlocks: BetweenBlocks,
  stopping: () => boolean,
  resourceLimits?: ResourceLimits,
): Promise<KeysWritten & { bytes: number }> {
  const changes = await encodeChanges(view, betweenBlocks);
  const job: KeysJob = {
    kind: JOB_KIND,
    filePath,
    revision: view.revision,
    leases: view.leases.map((l) => ({ id: l.id, ttlMs: l.ttlMs, private: l.private })),
    capacity: view.size,
    // The worker does not read which entries have leases: the new table's own list says.
    base: view.base.parts(false),
    changes,
  };
  let worker: Worker;
  try {
    worker = startWorker(job, changes, resourceLimits);
  } catch (err) {
    throw new CheckpointWorkerFailed(`the checkpoint's worker thread could not start: ${(err as Error).message}`, { cause: err });
  }
  let reply: KeysReply | undefined;
  let failure: Error | undefined;
  let finished = false;
  const done = new Promise<void>((resolve) => {
    worker.once('message', (message: KeysReply) => {
      reply = message;
      resolve();
    });
    worker.once('error', (err) => {
      failure = new CheckpointWorkerFailed(`the checkpoint's worker thread failed: ${err.message}`, { cause: err });
      resolve();
    });
    worker.once('exit', (code) => {
      failure ??= new CheckpointWorkerFailed(`the checkpoint's worker thread exited with code ${code} before it answered`);
      resolve();
    });
  }).then(() => {
    finished = true;
  });
  try {
    while (!finished) {
      await Promise.race([done, delay(STOP_POLL_MS)]);
      if (!finished && stopping()) await betweenBlocks();
    }
  } finally {
    await worker.terminate();
  }
  if (reply?.ok === true) return { bytes: reply.bytes, count: reply.count, table: KeyTable.fromParts(reply.table) };
  if (reply !== undefined) {
    // An I/O error has an errno code (ENOSPC, EIO...); Node's own codes (ERR_OUT_OF_RANGE...) are a bug in the worker.
    if (reply.io.code === undefined || !/^E[A-Z0-9]+$/.test(reply.io.code)) {
      const err = new CheckpointWorkerFailed(`the checkpoint's worker thread failed: ${reply.message}`);
      if (reply.stack !== undefined) err.stack = reply.stack;
      throw err;
    }
    // As thrown there: an I/O error keeps its code (a full disk is told apart by it), errno, system call and path.
    const err = Object.assign(new Error(reply.message), reply.io);
    if (reply.stack !== undefined) err.stack = reply.stack;
    throw err;
  }
  throw failure ?? new CheckpointWorkerFailed("the checkpoint's worker thread ended without an answer");
}

/** The view's layers' entries as CHANGES chunks (see above), newest layer first. */
async function encodeChanges(view: IndexSnapshot, betweenBlocks: BetweenBlocks): Promise<Uint8Array[]> {
  const chunks: Uint8Array[] = [];
  let buf = Buffer.allocUnsafe(CHUNK_BYTES);
  let at = 0;
  let n = 0;
  for (let l = view.layers.length - 1; l >= 0; l--) {
    for (const [key, entry] of view.layers[l].changes) {
      const keyBytes = Buffer.byteLength(key, 'utf8');
      const valueBytes = entry === null ? 0 : Buffer.byteLength(entry.valueJson, 'utf8');
      const size = 1 + (entry === null ? 4 + keyBytes : entrySize(keyBytes, valueBytes));
      if (at + size > buf.length) {
        chunks.push(buf.subarray(0, at));
        buf = Buffer.allocUnsafe(Math.max(CHUNK_BYTES, size));
        at = 0;
        // A pause per chunk too: a thousand large values are few keys but many bytes.
        await betweenBlocks();
      }
      if (entry === null) {
        buf[at] = 0;
        buf.writeUInt32LE(keyBytes, at + 1);
        at += 5 + buf.write(key, at + 5, keyBytes, 'utf8');
      } else {
        buf[at] = 1;
        at = writeEntry(buf, at + 1, key, keyBytes, entry, valueBytes);
      }
      if (++n % KEYS_PER_PAUSE === 0) await betweenBlocks();
    }
  }
  if (at > 0) chunks.push(buf.subarray(0, at));
  return chunks;
}

/**
 * A worker thread running this module with `job`. From the sources (tests,
 * benchmarks run with tsx) it loads them through tsx, as its parent does.
 */
function startWorker(job: KeysJob, changes: Uint8Array[], resourceLimits: ResourceLimits | undefined): Worker {
  // Each chunk has an ArrayBuffer of its own (allocUnsafe of 1 MiB or more is never pooled): moved, not copied.
  const transferList = changes.map((c) => c.buffer as ArrayBuffer);
  if (!__filename.endsWith('.ts')) return new Worker(__filename, { workerData: job, transferList, resourceLimits });
  const source = `require(${JSON.stringify(require.resolve('tsx/cjs'))}); require(${JSON.stringify(__filename)});`;
  return new Worker(source, { eval: true, workerData: job, transferList, resourceLimits });
}

/** The worker's side: writes the file's head and the new table (mergeKeys), and answers once. */
async function runJob(job: KeysJob): Promise<KeysReply> {
  const fd = fs.openSync(job.filePath, 'wx', 0o600);
  let position = 0;
  try {
    // The worker has a thread of its own to block.
    const write = (buf: Buffer, start: number, end: number): Promise<void> => {
      let done = start;
      while (done < end) done += fs.writeSync(fd, buf, done, end - done, position + (done - start));
      position += end - start;
      return Promise.resolve();
    };
    const base = KeyTable.fromParts(job.base);
    const changes = job.changes.map((u) => Buffer.from(u.buffer, u.byteOffset, u.byteLength));
    const written = await writeKeys(
      write,
      job.revision,
      job.leases,
      job.capacity,
      (out) => mergeKeys(base, changes, out),
      () => undefined,
    );
    return { ok: true, bytes: position, count: written.count, table: written.table.parts() };
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Writes every live key in code point order: the entries of `base` no change
 * mentions, copied a run at a time as bytes; and each changed key's newest
 * change (its first in `chunks`), if a set.
 */
async function mergeKeys(base: KeyTable, chunks: Buffer[], out: KeyBlocks): Promise<void> {
  // Every change, as its chunk and offset; for each table entry, the first change of its key (-1: none).
  const refChunk: number[] = [];
  const refAt: number[] = [];
  const touched = new Int32Array(base.count).fill(-1);
  const created: number[] = [];
  for (let c = 0; c < chunks.length; c++) {
    const buf = chunks[c];
    for (let at = 0; at < buf.length;) {
      const set = buf[at] === 1;
      const keyBytes = buf.readUInt32LE(at + 1);
      const keyStart = at + 1 + (set ? ENTRY_HEADER_SIZE : 4);
      const r = refChunk.length;
      refChunk.push(c);
      refAt.push(at);
      const i = base.count === 0 ? -1 : base.findBytes(buf, keyStart, keyBytes);
      if (i < 0) created.push(r);
      else if (touched[i] === -1) touched[i] = r;
      at = keyStart + keyBytes + (set ? buf.readUInt32LE(at + 5) : 0);
    }
  }
  const keyStartOf = (r: number): number => refAt[r] + 1 + (chunks[refChunk[r]][refAt[r]] === 1 ? ENTRY_HEADER_SIZE : 4);
  const keyBytesOf = (r: number): number => chunks[refChunk[r]].readUInt32LE(refAt[r] + 1);
  const isSet = (r: number): boolean => chunks[refChunk[r]][refAt[r]] === 1;
  const compareKeys = (a: number, b: number): number => {
    const ab = chunks[refChunk[a]];
    const bb = chunks[refChunk[b]];
    const as = keyStartOf(a);
    const bs = keyStartOf(b);
    const an = keyBytesOf(a);
    const bn = keyBytesOf(b);
    const common = an < bn ? an : bn;
    for (let k = 0; k < common; k++) {
      const d = ab[as + k] - bb[bs + k];
      if (d !== 0) return d;
    }
    return an - bn;
  };
  // Keys the table does not have, in order; of a key changed in several layers the newest change (a stable sort keeps
  // the chunks' order among equal keys), and only if it is a set.
  created.sort((a, b) => compareKeys(a, b) || a - b);
  const added: number[] = [];
  for (let k = 0; k < created.length; k++) {
    if (k > 0 && compareKeys(created[k - 1], created[k]) === 0) continue;
    if (isSet(created[k])) added.push(created[k]);
  }
  const writeChange = (r: number): Promise<void> => {
    const buf = chunks[refChunk[r]];
    const start = refAt[r] + 1;
    return out.copyEntry(buf, start, start + ENTRY_HEADER_SIZE + keyBytesOf(r) + buf.readUInt32LE(start + 4));
  };
  // The table position the next added key goes before.
  const positionOf = (j: number): number =>
    j < added.length ? base.seekBytes(chunks[refChunk[added[j]]], keyStartOf(added[j]), keyBytesOf(added[j])) : base.count;
  let j = 0;
  let addedAt = positionOf(0);
  for (let i = 0; i < base.count;) {
    while (addedAt <= i && j < added.length) {
      await writeChange(added[j]);
      addedAt = positionOf(++j);
    }
    const r = touched[i];
    if (r !== -1) {
      if (isSet(r)) await writeChange(r);
      i++;
      continue;
    }
    let limit = i + 1;
    const most = Math.min(addedAt, base.count);
    while (limit < most && touched[limit] === -1) limit++;
    i += await out.copyRun(base, i, limit);
  }
  for (; j < added.length; j++) await writeChange(added[j]);
}

if (!isMainThread && (workerData as Partial<KeysJob> | null)?.kind === JOB_KIND) {
  const port = parentPort;
  if (port === null) throw new Error('a checkpoint worker without a parent port');
  runJob(workerData as KeysJob).then(
    (reply) => port.postMessage(reply),
    (err: unknown) => {
      const e = err as Partial<NodeJS.ErrnoException> | undefined;
      const io = Object.fromEntries(
        Object.entries({ code: e?.code, errno: e?.errno, syscall: e?.syscall, path: e?.path }).filter(([, v]) => v !== undefined),
      );
      port.postMessage({ ok: false, message: String(e?.message ?? err), stack: e?.stack, io } satisfies KeysReply);
    },
  );
}

import { createHash } from 'node:crypto';
import { BackupResponse, type BackupEntry, type BackupRequest } from '../../gen/kv/v1/kv';
import type { StoreSnapshot } from '../../store/key-value-store';
import type { CallContext } from '../call-context';
import type { StreamSink } from '../grpc-call';

/** The layout of the stream (BackupHeader.format_version). */
export const BACKUP_FORMAT_VERSION = 1;
/** Entries per message are bounded by bytes, so a message stays small whatever the values' sizes (one big value goes alone). */
const BATCH_BYTES = 1024 * 1024;
const LEASES_PER_MESSAGE = 10_000;

/**
 * Backup: the store's frozen view at one revision, as a header, the leases,
 * the entries in key order and a trailer. Messages are encoded here rather
 * than by the transport, so the trailer's SHA-256 covers exactly the bytes
 * sent. The view costs writers only a saved old entry per key they change
 * while it is read; it is released however the call ends.
 */
export async function handleBackup({ store, access }: CallContext, _request: BackupRequest, sink: StreamSink<Buffer>): Promise<void> {
  access.prefix('admin', '');
  const snapshot = await store.snapshot();
  try {
    await streamSnapshot(snapshot, sink);
  } finally {
    snapshot.release();
  }
}

async function streamSnapshot(snapshot: StoreSnapshot, sink: StreamSink<Buffer>): Promise<void> {
  const hash = createHash('sha256');
  const length = Buffer.alloc(4);
  const send = (message: BackupResponse): Promise<void> => {
    const bytes = Buffer.from(BackupResponse.encode(message).finish());
    length.writeUInt32LE(bytes.length);
    hash.update(length).update(bytes);
    return sink.send(bytes);
  };
  await send({
    header: {
      formatVersion: BACKUP_FORMAT_VERSION,
      revision: snapshot.revision,
      keyCount: snapshot.keyCount,
      leaseCount: snapshot.leases.length,
      createdAtMs: Date.now(),
    },
  });
  for (let i = 0; i < snapshot.leases.length; i += LEASES_PER_MESSAGE) {
    await send({
      leases: {
        leases: snapshot.leases
          .slice(i, i + LEASES_PER_MESSAGE)
          .map(({ id, ttlMs, private: own }) => ({ id, ttlMs, private: own === true })),
      },
    });
  }
  let batch: BackupEntry[] = [];
  let bytes = 0;
  for (const [key, entry] of snapshot.entries()) {
    // A cancelled call stops reading the view (the sink's send resolves at once once the call ended).
    if (sink.signal.aborted) return;
    const { valueJson, createRevision, modRevision, version, lease } = entry;
    batch.push({ key, valueJson, createRevision, modRevision, version, lease });
    bytes += key.length + valueJson.length + 40;
    if (bytes >= BATCH_BYTES) {
      await send({ entries: { entries: batch } });
      batch = [];
      bytes = 0;
      // A fast reader never makes send() wait: yield anyway, so other calls (writes above all) are served meanwhile.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  if (batch.length > 0) await send({ entries: { entries: batch } });
  // The trailer is not part of what it checks.
  await sink.send(Buffer.from(BackupResponse.encode({ trailer: { sha256: hash.digest() } }).finish()));
}

/**
 * The bytes between a worker and the store owner (--workers N): every
 * message comes back from its frame as it was sent, whether it has a layout
 * of its own (a Set, the read index, their answers, the live feed) or goes
 * V8-serialized; and a frame already handed to the socket is never
 * overwritten by the frames after it.
 */
import { FrameReader, FrameWriter, type FrameCodec } from '../../src/store/remote/frame-codec';
import { OWNER_CODEC, WORKER_CODEC, decodeWatchBatch, encodeWatchBatch } from '../../src/store/remote/owner-codec';
import type { OwnerMessage, WorkerMessage } from '../../src/store/remote/owner-protocol';
import type { WatchBatch } from '../../src/store/key-value-store';

function frameOf<Out>(codec: FrameCodec<Out, unknown>, writer: FrameWriter, messages: Out[]): Buffer {
  writer.begin();
  for (const message of messages) codec.encode(message, writer);
  return writer.end();
}

function read<In>(codec: FrameCodec<unknown, In>, frame: Buffer): In[] {
  expect(frame.readUInt32LE(0)).toBe(frame.length - 4);
  const reader = new FrameReader(frame, 4);
  const messages: In[] = [];
  while (!reader.done) messages.push(codec.decode(reader));
  return messages;
}

/** What the worker sends, as the owner reads it. */
function workerToOwner(messages: WorkerMessage[], writer = new FrameWriter()): WorkerMessage[] {
  return read(OWNER_CODEC, frameOf(WORKER_CODEC, writer, messages));
}

function ownerToWorker(messages: OwnerMessage[], writer = new FrameWriter()): OwnerMessage[] {
  return read(WORKER_CODEC, frameOf(OWNER_CODEC, writer, messages));
}

const VALUE = JSON.stringify({ name: 'Zoë', tags: ['a', '日本', '🦊'], n: 1.5, ok: true, none: null });

describe('the frames between a worker and the store owner', () => {
  test('a Set comes back with every field, options given or not, in any script', () => {
    const sets: WorkerMessage[] = [
      {
        kind: 'call',
        id: 1,
        call: {
          method: 'set',
          op: {
            key: 'user/zoë/🦊',
            keyBytes: 15,
            valueJson: VALUE,
            valueBytes: 61,
            expectedRevision: undefined,
            lease: 0,
            ttlMs: undefined,
          },
        },
      },
      {
        kind: 'call',
        id: 2 ** 40,
        call: {
          method: 'set',
          op: { key: 'k', keyBytes: 1, valueJson: '0', valueBytes: 1, expectedRevision: 0, lease: 7, ttlMs: undefined },
        },
      },
      {
        kind: 'call',
        id: 3,
        call: { method: 'set', op: { key: 'k', keyBytes: 1, valueJson: '""', valueBytes: 2, expectedRevision: 12, lease: 0, ttlMs: 1500 } },
      },
    ];
    expect(workerToOwner(sets)).toStrictEqual(sets);
  });

  test('the read index, and every other kind of message (V8-serialized), keep their order and fields', () => {
    const messages: WorkerMessage[] = [
      { kind: 'bootstrap', name: 'worker-1' },
      { kind: 'read-index', id: 5 },
      { kind: 'call', id: 6, call: { method: 'delete', op: { key: 'a', keyBytes: 1, expectedRevision: undefined } } },
      { kind: 'call', id: 7, call: { method: 'grantLease', ttlMs: 10_000 } },
      { kind: 'snapshot-info', id: 8 },
    ];
    expect(workerToOwner(messages)).toStrictEqual(messages);
  });

  test("answers: a number, a Set's { revision }, and answers with more fields or of other shapes, each as sent", () => {
    const messages: OwnerMessage[] = [
      { kind: 'reply', id: 1, value: 41 },
      { kind: 'reply', id: 2, value: { revision: 42 } },
      { kind: 'reply', id: 3, value: { deleted: true, revision: 43 } },
      { kind: 'reply', id: 4, value: { revision: '44' } },
      { kind: 'reply', id: 5, value: { revision: 45, entry: undefined } },
      { kind: 'reply', id: 6, value: null },
      { kind: 'reply', id: 7, value: undefined },
      { kind: 'fail', id: 8, error: { name: 'ConflictError', message: 'key "a": expected revision 1', fields: { currentRevision: 2 } } },
      { kind: 'failure', error: undefined },
    ];
    expect(ownerToWorker(messages)).toStrictEqual(messages);
  });

  test('a live feed batch (puts and deletes, with and without previous entries) decodes to what was encoded', () => {
    const entry = { valueJson: VALUE, createRevision: 3, modRevision: 9, version: 4, lease: 0 };
    const batch: WatchBatch = {
      revision: 11,
      events: [
        { type: 'put', key: 'a/🦊', revision: 9, entry, prev: undefined },
        { type: 'put', key: 'b', revision: 10, entry: { ...entry, modRevision: 10, lease: 77 }, prev: { ...entry, version: 3 } },
        { type: 'delete', key: 'a/🦊', revision: 11, entry: undefined, prev: entry },
      ],
    };
    const [message] = ownerToWorker([{ kind: 'live-feed', bytes: encodeWatchBatch(batch) }]);
    expect(message.kind).toBe('live-feed');
    expect(decodeWatchBatch((message as { bytes: Buffer }).bytes)).toStrictEqual(batch);
    expect(decodeWatchBatch(encodeWatchBatch({ revision: 12, events: [] }))).toStrictEqual({ revision: 12, events: [] });
  });

  test('a frame handed to the socket stays as it was while later frames are written, small or larger than a slab', () => {
    const writer = new FrameWriter();
    const frames: Array<{ frame: Buffer; sent: OwnerMessage[] }> = [];
    // 2,000 small frames fill several slabs; the large values force a slab of their own in between.
    for (let i = 0; i < 2_000; i++) {
      const large = i % 500 === 250;
      const bytes = encodeWatchBatch({
        revision: i,
        events: [
          {
            type: 'put',
            key: `k${i}`,
            revision: i,
            entry: { valueJson: large ? `"${'x'.repeat(300_000)}"` : `${i}`, createRevision: 1, modRevision: i, version: i, lease: 0 },
            prev: undefined,
          },
        ],
      });
      const sent: OwnerMessage[] = [
        { kind: 'reply', id: i, value: { revision: i } },
        { kind: 'live-feed', bytes },
      ];
      frames.push({ frame: frameOf(OWNER_CODEC, writer, sent), sent });
    }
    for (const { frame, sent } of frames) {
      const got = read(WORKER_CODEC, frame);
      expect(got[0]).toStrictEqual(sent[0]);
      const bytes = (sent[1] as { bytes: Buffer }).bytes;
      expect((got[1] as { bytes: Buffer }).bytes.equals(bytes)).toBe(true);
      expect(decodeWatchBatch(bytes).revision).toBe((sent[0] as { id: number }).id);
    }
  });

  test('a frame cut short or holding an unknown kind of message is an error, not a message', () => {
    const frame = frameOf(WORKER_CODEC, new FrameWriter(), [{ kind: 'read-index', id: 5 }]);
    expect(() => OWNER_CODEC.decode(new FrameReader(frame, 4, frame.length - 1))).toThrow(RangeError);
    expect(() => OWNER_CODEC.decode(new FrameReader(Buffer.from([200]), 0))).toThrow(/unknown kind 200/);
    expect(() => WORKER_CODEC.decode(new FrameReader(Buffer.from([200]), 0))).toThrow(/unknown kind 200/);
    const batch = encodeWatchBatch({ revision: 1, events: [] });
    expect(() => decodeWatchBatch(Buffer.concat([batch, Buffer.from([0])]))).toThrow(RangeError);
  });
});

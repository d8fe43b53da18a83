/**
 * An answer too large for JSON on the HTTP port. connect-node writes each
 * JSON message as one JavaScript string, which V8 caps at about 512 Mi
 * characters: past it the call failed as 500 internal "Invalid string
 * length". The server now decides before handing the answer over
 * (json-size.ts) and ends such a call with RESOURCE_EXHAUSTED saying what
 * to do. Reaching the real cap takes more than 512 MiB of values (measured
 * by hand: a Watch of the Clear of 600 values of 1 MiB, with prevEntry;
 * a List page now ends at 32 MiB); here the decision is tested with a small
 * cap, its bound against the kv.v1 messages that stretch most as JSON, and
 * a real server answers a Watch revision past the size where the decision
 * has to look (32 MiB) in full.
 */
import { create, type DescMessage, type MessageShape, toBinary, toJsonString } from '@bufbuild/protobuf';
import { ValueSchema } from '@bufbuild/protobuf/wkt';
import { KvClient } from '@kv/client';
import {
  EntrySchema,
  EventSchema,
  EventType,
  ListResponseSchema,
  ResponseOpSchema,
  TxnResponseSchema,
  WatchResponseSchema,
} from '../../src/gen/kv/v1/kv_pb';
import { ALWAYS_FITS_JSON_BYTES, JSON_CHARS_PER_BYTE, MAX_JSON_CHARS, tooLargeForJson } from '../../src/server/http/json-size';
import { startServer } from '../support/server-process';

const text = (value: string): MessageShape<typeof ValueSchema> => create(ValueSchema, { kind: { case: 'stringValue', value } });

function listOf(count: number, value: string): MessageShape<typeof ListResponseSchema> {
  return create(ListResponseSchema, {
    entries: Array.from({ length: count }, (_, i) =>
      create(EntrySchema, { key: `k/${i}`, value: text(value), createRevision: 1n, modRevision: 1n, version: 1n }),
    ),
  });
}

describe('the decision', () => {
  test('an answer longer than the cap as JSON is too large, one that is not is not', () => {
    const list = listOf(20, 'x'.repeat(500));
    const bytes = toBinary(ListResponseSchema, list).length;
    const chars = toJsonString(ListResponseSchema, list).length;
    expect(tooLargeForJson(ListResponseSchema, list, bytes, chars - 1)).toBe(true);
    expect(tooLargeForJson(ListResponseSchema, list, bytes, chars)).toBe(false);
  });

  test('control characters, 1 byte each and 6 characters in JSON, are counted as JSON', () => {
    const list = listOf(1, '\u0001'.repeat(1000));
    const bytes = toBinary(ListResponseSchema, list).length;
    expect(tooLargeForJson(ListResponseSchema, list, bytes, 3 * bytes)).toBe(true);
    expect(tooLargeForJson(ListResponseSchema, list, bytes, 7 * bytes)).toBe(false);
  });

  test('an answer short enough to fit whatever it holds is not looked at', () => {
    const untouchable = new Proxy({} as MessageShape<typeof ListResponseSchema>, {
      get: () => {
        throw new Error('the message was read');
      },
    });
    expect(tooLargeForJson(ListResponseSchema, untouchable, ALWAYS_FITS_JSON_BYTES)).toBe(false);
    expect(ALWAYS_FITS_JSON_BYTES).toBeGreaterThan(30 * 2 ** 20);
    expect(() => tooLargeForJson(ListResponseSchema, untouchable, ALWAYS_FITS_JSON_BYTES + 1)).toThrow('the message was read');
  });

  test('the bound holds for the kv.v1 messages that stretch most as JSON', () => {
    const stretched: [DescMessage, MessageShape<DescMessage>][] = [
      // The longest field names with the shortest values.
      [ListResponseSchema, listOf(50, '')],
      [
        ListResponseSchema,
        create(ListResponseSchema, {
          entries: Array.from({ length: 50 }, () =>
            create(EntrySchema, {
              key: 'a',
              value: create(ValueSchema, { kind: { case: 'nullValue', value: 0 } }),
              createRevision: 1n,
              modRevision: 1n,
              version: 1n,
              lease: 1n,
            }),
          ),
        }),
      ],
      // An enum by name: "EVENT_TYPE_DELETE" from one byte.
      [
        WatchResponseSchema,
        create(WatchResponseSchema, {
          revision: 1n,
          events: Array.from({ length: 50 }, () =>
            create(EventSchema, { type: EventType.DELETE, entry: create(EntrySchema, { key: 'a', modRevision: 1n }) }),
          ),
        }),
      ],
      [
        WatchResponseSchema,
        create(WatchResponseSchema, { events: Array.from({ length: 50 }, () => create(EventSchema, { type: EventType.DELETE })) }),
      ],
      [
        TxnResponseSchema,
        create(TxnResponseSchema, {
          succeeded: true,
          revision: 1n,
          responses: Array.from({ length: 50 }, () =>
            create(ResponseOpSchema, { response: { case: 'delete', value: { deleted: true, revision: 1n } } }),
          ),
        }),
      ],
      // Control characters, numbers and booleans in values.
      [ListResponseSchema, listOf(3, '\u0001\u001f"\\'.repeat(100))],
      [
        ListResponseSchema,
        create(ListResponseSchema, {
          entries: [
            create(EntrySchema, {
              key: '\u0001',
              value: create(ValueSchema, {
                kind: {
                  case: 'listValue',
                  value: {
                    values: Array.from({ length: 100 }, (_, i) =>
                      i % 2 === 0
                        ? create(ValueSchema, { kind: { case: 'numberValue', value: -1.2345678901234568e-300 } })
                        : create(ValueSchema, { kind: { case: 'boolValue', value: false } }),
                    ),
                  },
                },
              }),
            }),
          ],
        }),
      ],
    ];
    for (const [schema, message] of stretched) {
      const bytes = toBinary(schema, message).length;
      const chars = toJsonString(schema, message).length;
      expect(chars).toBeLessThanOrEqual(bytes * JSON_CHARS_PER_BYTE + 64);
    }
  });

  test('the cap is the longest string V8 makes', () => {
    expect(() => 'x'.repeat(MAX_JSON_CHARS + 1)).toThrow(RangeError);
  });
});

/** The messages of a Connect stream, each whole; chunks are joined once per message, not as they come (one is over 32 MiB). */
async function* connectMessages(body: ReadableStream<Uint8Array>): AsyncGenerator<Buffer> {
  const reader = body.getReader();
  let chunks: Buffer[] = [];
  let size = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    chunks.push(Buffer.from(value));
    size += value.length;
    for (;;) {
      if (size < 5) break;
      if (chunks[0].length < 5) chunks = [Buffer.concat(chunks)];
      const end = 5 + chunks[0].readUInt32BE(1);
      if (size < end) break;
      const joined = Buffer.concat(chunks);
      yield joined.subarray(5, end);
      chunks = [joined.subarray(end)];
      size = chunks[0].length;
    }
  }
}

test('a real server answers a Watch revision past 32 MiB in JSON, in full', async () => {
  const server = await startServer({ args: ['--http-listen', '127.0.0.1:0', '--fsync', 'never'] });
  const kv = new KvClient(server.address);
  try {
    const value = 'v'.repeat(2 ** 20 - 2); // 1 MiB as JSON, the default limit
    const count = Math.ceil(ALWAYS_FITS_JSON_BYTES / 2 ** 20) + 2;
    for (let i = 0; i < count; i += 8) {
      await Promise.all(Array.from({ length: Math.min(8, count - i) }, (_, j) => kv.set(`big/${String(i + j).padStart(3, '0')}`, value)));
    }
    const base = `http://${server.httpAddress}/kv.v1.KeyValueService`;

    // A Watch that will get the Clear of them all, with their previous values, as one message.
    const watchRequest = Buffer.from(JSON.stringify({ prefix: 'big/', prevEntry: true }));
    const header = Buffer.alloc(5);
    header.writeUInt32BE(watchRequest.length, 1);
    const abort = new AbortController();
    const watch = await fetch(`${base}/Watch`, {
      method: 'POST',
      headers: { 'content-type': 'application/connect+json' },
      body: Buffer.concat([header, watchRequest]),
      signal: abort.signal,
    });

    await kv.clear({ prefix: 'big/' });
    type WatchMessage = { events?: { prevEntry?: { value: string } }[] };
    let deleted: WatchMessage | undefined;
    for await (const message of connectMessages(watch.body!)) {
      deleted = JSON.parse(message.toString()) as WatchMessage;
      if ((deleted.events?.length ?? 0) > 0) break;
    }
    expect(deleted).toBeDefined();
    expect(deleted?.events).toHaveLength(count);
    expect(deleted?.events?.every((event) => event.prevEntry?.value === value)).toBe(true);
    abort.abort();
  } finally {
    kv.close();
    expect(await server.stop()).toBe(0);
  }
}, 60_000);

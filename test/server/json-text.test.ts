/**
 * A Set's value is read from the wire straight into JSON text
 * (src/server/wire/json-text.ts). It must be exactly the text the object
 * reader's value JSON-encodes to, and where it cannot be, the object reader's
 * value and error must come out: checked on random Value messages, including
 * the ones the text reader must hand over (digit-first and repeated keys,
 * NaN, nesting past the limit, entries and items without a value, several
 * kinds in one Value).
 */
import fc from 'fast-check';
import { BinaryReader, BinaryWriter } from '@bufbuild/protobuf/wire';
import { readJsonValue } from '@kv/client/wire';
import { readValueText } from '../../src/server/wire/json-text';
import { JsonText, VALUE_NESTING, encodeValue } from '../../src/store/value-rules';

/** A google.protobuf.Value as the wire may carry it, malformed ones included. */
type WireValue =
  | { kind: 'null' }
  | { kind: 'number'; n: number }
  | { kind: 'string'; s: string }
  | { kind: 'bool'; b: boolean }
  | { kind: 'struct'; entries: Array<[string, WireValue | undefined]>; valueFirst?: boolean }
  | { kind: 'list'; items: Array<WireValue | undefined> }
  | { kind: 'two'; first: WireValue; second: WireValue }
  | { kind: 'empty' };

function write(writer: BinaryWriter, value: WireValue): void {
  switch (value.kind) {
    case 'null':
      writer.uint32((1 << 3) | 0).int32(0);
      return;
    case 'number':
      writer.uint32((2 << 3) | 1).double(value.n);
      return;
    case 'string':
      writer.uint32((3 << 3) | 2).string(value.s);
      return;
    case 'bool':
      writer.uint32((4 << 3) | 0).bool(value.b);
      return;
    case 'struct':
      writer.uint32((5 << 3) | 2).fork();
      for (const [key, field] of value.entries) {
        writer.uint32((1 << 3) | 2).fork();
        if (!value.valueFirst) writer.uint32((1 << 3) | 2).string(key);
        if (field !== undefined) {
          writer.uint32((2 << 3) | 2).fork();
          write(writer, field);
          writer.join();
        }
        if (value.valueFirst) writer.uint32((1 << 3) | 2).string(key);
        writer.join();
      }
      writer.join();
      return;
    case 'list':
      writer.uint32((6 << 3) | 2).fork();
      for (const item of value.items) {
        writer.uint32((1 << 3) | 2).fork();
        if (item !== undefined) write(writer, item);
        writer.join();
      }
      writer.join();
      return;
    case 'two':
      write(writer, value.first);
      write(writer, value.second);
      return;
    case 'empty':
      return;
  }
}

function bytesOf(value: WireValue): Uint8Array {
  const writer = new BinaryWriter();
  write(writer, value);
  return writer.finish();
}

const key = fc.oneof(fc.string(), fc.constantFrom('', '__proto__', '0', '1', '10', '01', '-1', 'a', 'b', 'constructor', 'é', '😀'));

const wireValue = fc.letrec<{ value: WireValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant<WireValue>({ kind: 'null' }),
    fc.oneof(fc.double(), fc.integer(), fc.constantFrom(0, -0, 1e21, 5e-324)).map((n): WireValue => ({ kind: 'number', n })),
    fc.oneof(fc.string(), fc.string({ unit: 'grapheme' }), fc.string({ unit: 'binary' })).map((s): WireValue => ({ kind: 'string', s })),
    fc.boolean().map((b): WireValue => ({ kind: 'bool', b })),
    fc
      .tuple(
        fc.array(fc.tuple(key, fc.option(tie('value'), { freq: 20, nil: undefined })), { maxLength: 20 }),
        fc.constantFrom(false, false, false, false, true),
      )
      .map(([entries, valueFirst]): WireValue => ({ kind: 'struct', entries, valueFirst })),
    fc.array(fc.option(tie('value'), { freq: 20, nil: undefined }), { maxLength: 6 }).map((items): WireValue => ({ kind: 'list', items })),
    fc.tuple(tie('value'), tie('value')).map(([first, second]): WireValue => ({ kind: 'two', first, second })),
    fc.constant<WireValue>({ kind: 'empty' }),
  ),
})).value;

/** The server's reader: strings decoded strictly, as decode-request.ts decodes them. */
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
function readerOf(bytes: Uint8Array, strict: boolean): BinaryReader {
  return strict ? new BinaryReader(bytes, (b) => strictUtf8.decode(b)) : new BinaryReader(bytes);
}

type Reading = { value: unknown; pos?: number } | { error: string };

/** What a reader makes of the bytes: its value, or its error's message; and where it stopped. */
function reading(read: typeof readJsonValue | typeof readValueText, bytes: Uint8Array, strict: boolean): Reading {
  const reader = readerOf(bytes, strict);
  try {
    return { value: read(reader, bytes.length, VALUE_NESTING), pos: reader.pos };
  } catch (error) {
    return { error: (error as Error).message };
  }
}

const objectReading = (bytes: Uint8Array, strict = false): Reading => reading(readJsonValue, bytes, strict);
const textReading = (bytes: Uint8Array, strict = false): Reading => reading(readValueText, bytes, strict);

/** The JSON text the store would keep for a reading (or its refusal). */
function stored(reading: { value: unknown } | { error: string }): string {
  if ('error' in reading) return `error: ${reading.error}`;
  if (reading.value === undefined) return 'no value';
  try {
    return encodeValue('k', reading.value as JsonText, 1 << 30).json;
  } catch (error) {
    return `refused: ${(error as Error).message}`;
  }
}

test('the text reader keeps exactly what the object reader would, on random Value messages', () => {
  let asText = 0;
  fc.assert(
    fc.property(wireValue, (value) => {
      const bytes = bytesOf(value);
      const text = textReading(bytes);
      if ('value' in text && text.value instanceof JsonText) asText++;
      expect(stored(text)).toBe(stored(objectReading(bytes)));
    }),
    { numRuns: 3000 },
  );
  // Most random values are read as text: the test is not only comparing the object reader with itself.
  expect(asText).toBeGreaterThan(1000);
});

test('on damaged bytes, with strict UTF-8, both readers store the same text or fail the same way, and stop at the same place', () => {
  const damage = fc.array(fc.tuple(fc.constantFrom('set', 'insert', 'delete'), fc.nat(), fc.integer({ min: 0, max: 255 })), {
    minLength: 1,
    maxLength: 3,
  });
  fc.assert(
    fc.property(wireValue, damage, (value, edits) => {
      const bytes = [...bytesOf(value)];
      for (const [edit, at, byte] of edits) {
        const i = bytes.length === 0 ? 0 : at % bytes.length;
        if (edit === 'set' && bytes.length > 0) bytes[i] = byte;
        else if (edit === 'insert') bytes.splice(i, 0, byte);
        else bytes.splice(i, 1);
      }
      const damaged = Uint8Array.from(bytes);
      const text = textReading(damaged, true);
      const object = objectReading(damaged, true);
      expect(stored(text)).toBe(stored(object));
      if ('pos' in text && 'pos' in object) expect(text.pos).toBe(object.pos);
    }),
    { numRuns: 3000 },
  );
});

test('a value too long for the text buffer is read by the object reader, the same', () => {
  const long = bytesOf({
    kind: 'list',
    items: [
      { kind: 'string', s: 'x'.repeat(70_000) },
      { kind: 'string', s: 'é'.repeat(40_000) },
    ],
  });
  const read = readValueText(new BinaryReader(long), long.length, VALUE_NESTING);
  expect(read).not.toBeInstanceOf(JsonText);
  expect(stored({ value: read })).toBe(stored(objectReading(long)));
});

test('nesting is bounded as the object reader bounds it', () => {
  let deep: WireValue = { kind: 'null' };
  for (let level = 0; level < 60; level++) deep = { kind: 'list', items: [deep] };
  const bytes = bytesOf(deep);
  expect(stored(textReading(bytes))).toBe(stored(objectReading(bytes)));
  expect(stored(textReading(bytes))).toMatch(/nested too deeply/);
});

test('plain values are read as text; keys the object would reorder or merge are not', () => {
  const plain = bytesOf({
    kind: 'struct',
    entries: [
      ['b', { kind: 'number', n: -0 }],
      ['a', { kind: 'list', items: [{ kind: 'string', s: 'x"\n\u2028' }, { kind: 'bool', b: true }, { kind: 'null' }] }],
      ['__proto__', { kind: 'struct', entries: [] }],
    ],
  });
  const read = readValueText(new BinaryReader(plain), plain.length, VALUE_NESTING);
  expect(read).toBeInstanceOf(JsonText);
  expect((read as JsonText).json).toBe('{"b":0,"a":["x\\"\\n\u2028",true,null],"__proto__":{}}');

  const digits = bytesOf({
    kind: 'struct',
    entries: [
      ['b', { kind: 'number', n: 1 }],
      ['1', { kind: 'number', n: 2 }],
    ],
  });
  const reordered = readValueText(new BinaryReader(digits), digits.length, VALUE_NESTING);
  expect(reordered).not.toBeInstanceOf(JsonText);
  expect(JSON.stringify(reordered)).toBe('{"1":2,"b":1}');
});

/**
 * int64 fields (revisions, ttlMs, lease ids, startRevision) given as JSON
 * strings on the HTTP port: proto3 JSON allows only a decimal integer, an
 * optional '-' and digits. Any other string ("0x0f", "+5", " 15", "\t", "")
 * is refused with one line naming the field and the value, and nothing is
 * written; protobuf-es alone read them with BigInt(), "0x0f" as 15 and "\t"
 * as 0 (a create-only compare-and-set). Numbers, and decimal strings, are
 * read as before; the 32-bit integer fields (pageSize) follow the same rule.
 */
import { startServer, type RunningServer } from '../support/server-process';

let server: RunningServer;

beforeAll(async () => {
  server = await startServer({ args: ['--http-listen', '127.0.0.1:0'] });
});

afterAll(async () => {
  expect(await server.stop()).toBe(0);
});

interface Answer {
  status: number;
  code?: string;
  message?: string;
  json: Record<string, unknown>;
}

async function post(method: string, body: string): Promise<Answer> {
  const response = await fetch(`http://${server.httpAddress}/kv.v1.KeyValueService/${method}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  });
  const json = (await response.json()) as Record<string, unknown>;
  return { status: response.status, code: json.code as string, message: json.message as string, json };
}

/** A Watch over Connect with one framed request: the end-of-stream error, if it ended with one at once. */
async function watchError(request: string): Promise<{ code: string; message: string } | undefined> {
  const message = Buffer.from(request);
  const header = Buffer.alloc(5);
  header.writeUInt32BE(message.length, 1);
  const response = await fetch(`http://${server.httpAddress}/kv.v1.KeyValueService/Watch`, {
    method: 'POST',
    headers: { 'content-type': 'application/connect+json', 'connect-timeout-ms': '500' },
    body: Buffer.concat([header, message]),
  });
  const body = Buffer.from(await response.arrayBuffer());
  // The frames: a flags byte, a 4-byte length, the message; the last one (flags 2) ends the stream.
  let last = body.subarray(0, 0);
  for (let at = 0; at + 5 <= body.length; at += 5 + body.readUInt32BE(at + 1))
    last = body.subarray(at + 5, at + 5 + body.readUInt32BE(at + 1));
  return (JSON.parse(last.toString()) as { error?: { code: string; message: string } }).error;
}

const BAD_STRINGS = ['0x0f', '0b10001', '0o21', '+5', ' 15', '15 ', '\t', ' ', '\n', '', '15.0', '1e1', '1_000', '١٥', '0x'];

test.each(BAD_STRINGS)('expectedRevision %j is refused, naming the field and value, and nothing is written', async (bad) => {
  const key = `bad/${encodeURIComponent(bad)}`;
  const body = `{"key": ${JSON.stringify(key)}, "value": 1, "expectedRevision": ${JSON.stringify(bad)}}`;
  const answer = await post('Set', body);
  expect([answer.status, answer.code]).toEqual([400, 'invalid_argument']);
  expect(answer.message).toContain('expectedRevision');
  expect(answer.message).toContain(JSON.stringify(bad));
  expect(answer.message!.split('\n')).toHaveLength(1);
  expect((await post('Get', JSON.stringify({ key }))).status).toBe(404);
});

test('every int64 field of every request is checked, in nested messages too: ttlMs, lease, lease ids, Txn compares, startRevision', async () => {
  const refused: [method: string, body: string, field: string][] = [
    ['Set', '{"key": "t/1", "value": 1, "ttlMs": "0x10000"}', 'ttlMs'],
    ['Set', '{"key": "t/1", "value": 1, "lease": " 7"}', 'lease'],
    ['Delete', '{"key": "t/1", "expectedRevision": "+0"}', 'expectedRevision'],
    ['Update', '{"key": "t/1", "patch": {}, "expected_revision": "0b1"}', 'expected_revision'],
    ['GrantLease', '{"ttlMs": "6e4"}', 'ttlMs'],
    ['LeaseInfo', '{"id": "0x1"}', 'id'],
    ['RevokeLease', '{"id": "\\t"}', 'id'],
    ['Txn', '{"compare": [{"result": "COMPARE_RESULT_EQUAL", "key": "t/1", "modRevision": "0x0"}]}', 'compare[0].modRevision'],
    ['Txn', '{"success": [{"set": {"key": "t/1", "value": 1, "ttlMs": "1e3"}}]}', 'success[0].set.ttlMs'],
    ['ListKeys', '{"prefix": "t/", "pageSize": "0x10"}', 'pageSize'],
  ];
  for (const [method, body, field] of refused) {
    const answer = await post(method, body);
    expect([method, field, answer.status, answer.code]).toEqual([method, field, 400, 'invalid_argument']);
    expect(answer.message).toMatch(new RegExp(`^request could not be decoded: ${field.replace(/[[\].]/g, '\\$&')} must be an integer`));
  }
  expect((await post('Get', '{"key": "t/1"}')).status).toBe(404);
  expect(await watchError('{"prefix": "t/", "startRevision": "0x1"}')).toMatchObject({
    code: 'invalid_argument',
    message: expect.stringMatching(/^request could not be decoded: startRevision must be an integer .*"0x1"$/),
  });
});

test('a number with a fraction, and a decimal string past int64, are refused as such, not as "out of range" in bigint terms', async () => {
  const fraction = await post('Set', '{"key": "f/1", "value": 1, "expectedRevision": 1.5}');
  expect([fraction.status, fraction.message]).toEqual([
    400,
    'request could not be decoded: expectedRevision must be an integer (a JSON number, or a string of decimal digits), not 1.5',
  ]);
  const past = await post('Set', '{"key": "f/1", "value": 1, "expectedRevision": "9223372036854775808"}');
  expect([past.status, past.message]).toEqual([
    400,
    'request could not be decoded: expectedRevision is out of range for an int64: "9223372036854775808"',
  ]);
  expect((await post('Get', '{"key": "f/1"}')).status).toBe(404);
});

test('the good forms are read as before: "15" and 15 compare, "0" creates only, "-1" is the server’s own refusal', async () => {
  const created = await post('Set', '{"key": "g/1", "value": 1, "expectedRevision": "0"}');
  expect(created.status).toBe(200);
  const revision = created.json.revision as string;
  for (const expected of ['"15"', '15', '15.0', '1.5e1']) {
    const mismatch = await post('Set', `{"key": "g/1", "value": 2, "expectedRevision": ${expected}}`);
    expect([expected, mismatch.status, mismatch.message]).toEqual([
      expected,
      409,
      `revision mismatch for key "g/1": expected 15, current mod_revision is ${revision}`,
    ]);
  }
  expect((await post('Set', `{"key": "g/1", "value": 3, "expectedRevision": "${revision}"}`)).status).toBe(200);
  expect((await post('Set', `{"key": "g/1", "value": 4, "expectedRevision": ${Number(revision) + 1}}`)).status).toBe(200);
  const negative = await post('Set', '{"key": "g/1", "value": 5, "expectedRevision": "-1"}');
  expect([negative.status, negative.message]).toEqual([400, 'expected_revision must not be negative (got -1)']);
  expect((await post('Set', '{"key": "g/2", "value": 1, "ttlMs": "60000"}')).status).toBe(200);
  expect((await post('Get', '{"key": "g/1"}')).json).toMatchObject({ entry: { value: 4 } });
});

/**
 * What README says of null in the protobuf JSON mapping on the HTTP port: a
 * field set to null is not set (so "expectedRevision": null is a plain
 * write, and Clear with {} or {"prefix": null} removes every key), except
 * value and patch, where null is JSON's null.
 */
import { startServer, type RunningServer } from '../support/server-process';

let server: RunningServer;

beforeAll(async () => {
  server = await startServer({ args: ['--http-listen', '127.0.0.1:0'] });
});

afterAll(async () => {
  expect(await server.stop()).toBe(0);
});

async function post(method: string, body: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(`http://${server.httpAddress}/kv.v1.KeyValueService/${method}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

test('"expectedRevision": null is a plain write; "value": null and "patch": null are JSON null', async () => {
  expect((await post('Set', '{"key": "a", "value": 1}')).status).toBe(200);
  expect((await post('Set', '{"key": "a", "value": 2, "expectedRevision": null}')).status).toBe(200);
  expect((await post('Set', '{"key": "a", "value": 3, "expectedRevision": "0"}')).status).toBe(409);
  expect((await post('Set', '{"key": "n", "value": null}')).status).toBe(200);
  expect((await post('Get', '{"key": "n"}')).json).toMatchObject({ entry: { value: null } });
  expect((await post('Update', '{"key": "a", "patch": null}')).json).toMatchObject({ entry: { value: null } });
});

test.each(['{}', '{"prefix": null}'])('Clear with %s removes every key', async (body) => {
  for (const key of ['x/1', 'y/1']) expect((await post('Set', `{"key": "${key}", "value": true}`)).status).toBe(200);
  const cleared = await post('Clear', body);
  expect(cleared.status).toBe(200);
  // No key left: ListKeys gives only the revision it was read at (the Clear's).
  expect((await post('ListKeys', '{}')).json).toEqual({ revision: cleared.json.revision });
});

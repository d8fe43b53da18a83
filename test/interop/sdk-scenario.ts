import { KvClient, KvError, status, type JsonValue, type KvClientOptions } from '@kv/client';

/**
 * The interop scenario (README.md beside this file) through the TypeScript
 * SDK. Returns the transcript, one line per step, exactly as the Go and
 * Python examples and the grpcurl script print it.
 */
export async function runSdkScenario(address: string, options?: KvClientOptions): Promise<string[]> {
  const kv = new KvClient(address, options);
  const lines: string[] = [];
  try {
    const config = {
      name: 'kv ✓',
      db: { host: 'db.internal', port: 5432 },
      tags: ['blue', 'green'],
      ratio: 0.5,
      debug: false,
      owner: null,
    };
    const revision = await set(kv, lines, 'example/app/config', config);
    await get(kv, lines, 'example/app/config');

    // Compare-and-set against the revision just read wins; the same stale
    // revision a second time loses with ABORTED.
    await set(kv, lines, 'example/app/config', { ...config, debug: true }, revision);
    await set(kv, lines, 'example/app/config', { debug: false }, revision);
    await get(kv, lines, 'example/app/config');

    await set(kv, lines, 'example/app/flags', true);
    await set(kv, lines, 'example/app/limits', [10, 20.5]);
    await set(kv, lines, 'example/readme', 'héllo, wörld');

    await list(kv, lines, 'example/app/', 2);
    lines.push(`delete example/app/flags -> deleted ${await kv.delete('example/app/flags')}`);
    lines.push(`delete example/app/flags -> deleted ${await kv.delete('example/app/flags')}`);
    await get(kv, lines, 'example/app/flags');
    lines.push(`clear example/app/ -> deleted_count ${await kv.clear({ prefix: 'example/app/' })}`);
    await list(kv, lines, 'example/app/', 2);
    await get(kv, lines, 'example/readme');
    lines.push(`clear example/ -> deleted_count ${await kv.clear({ prefix: 'example/' })}`);
    return lines;
  } finally {
    kv.close();
  }
}

async function set(kv: KvClient, lines: string[], key: string, value: JsonValue, expectedRevision?: number): Promise<number | undefined> {
  const step = expectedRevision === undefined ? `set ${key}` : `set ${key} expected_revision ${expectedRevision}`;
  try {
    const revision = await kv.set(key, value, { expectedRevision });
    lines.push(`${step} -> revision ${revision}`);
    return revision;
  } catch (error) {
    if (!(error instanceof KvError) || error.code !== status.ABORTED) throw error;
    lines.push(`${step} -> ABORTED ${error.reason} current_revision ${error.currentRevision}`);
    return undefined;
  }
}

async function get(kv: KvClient, lines: string[], key: string): Promise<void> {
  // The SDK answers a missing key with undefined rather than a NOT_FOUND error.
  const entry = await kv.get(key);
  lines.push(
    entry === undefined
      ? `get ${key} -> NOT_FOUND`
      : `get ${key} -> ${compactJson(entry.value)} create_revision ${entry.createRevision} mod_revision ${entry.modRevision} version ${entry.version}`,
  );
}

/** One line per page, following next_page_token until it is empty (AIP-158). */
async function list(kv: KvClient, lines: string[], prefix: string, pageSize: number): Promise<void> {
  let pageToken = '';
  for (let page = 1; ; page++) {
    const { keys, nextPageToken } = await kv.listKeysPage({ prefix, pageSize, pageToken });
    lines.push(`list ${prefix} page_size ${pageSize} page ${page} -> ${keys.length === 0 ? '(none)' : keys.join(' ')}`);
    if (nextPageToken === '') return;
    pageToken = nextPageToken;
  }
}

/** JSON with object keys sorted and no spaces: the form every interop client prints. */
function compactJson(value: JsonValue): string {
  return JSON.stringify(value, (_key, v: JsonValue) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

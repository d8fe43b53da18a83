import { Compare, KvClient, KvError, Op, status, type JsonValue, type KvClientOptions, type KvEntry, type TxnOpResult } from '@kv/client';

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

    // A transaction that creates config and flags together, only if config
    // does not exist yet, and otherwise reads it: the first run writes both
    // at one revision, the second finds config there.
    const txnRevision = await createOnce(kv, lines);
    await createOnce(kv, lines);
    // A JSON merge patch, merged on the server: port changes, owner is
    // added, tags (null in the patch) is removed, host is kept.
    const patch = { db: { port: 6432 }, owner: 'ops', tags: null };
    lines.push(`update example/app/config ${compactJson(patch)} -> ${entryLine(await kv.update('example/app/config', patch))}`);

    // A key with a time to live lives on a private lease; revoking that
    // lease deletes the key at once, as its expiry would after an hour.
    lines.push(`set example/session ttl_ms 3600000 -> revision ${await kv.set('example/session', { user: 'ada' }, { ttlMs: 3_600_000 })}`);
    const lease = await leaseOf(kv, lines, 'example/session');
    lines.push(`revoke lease of example/session -> deleted_count ${await kv.revokeLease(lease)}`);
    await get(kv, lines, 'example/session');

    const listedAt = await entries(kv, lines, 'example/', 2);
    // Every change under example/ since the transaction, up to the revision
    // the listing was read at: history, replayed in order.
    await watch(kv, lines, 'example/', txnRevision, listedAt);
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
  lines.push(`get ${key} -> ${entry === undefined ? 'NOT_FOUND' : entryLine(entry)}`);
}

/** "JSON create_revision C mod_revision M version V". */
function entryLine(entry: KvEntry): string {
  return `${compactJson(entry.value)} create_revision ${entry.createRevision} mod_revision ${entry.modRevision} version ${entry.version}`;
}

/**
 * A create-only transaction, the building block of a lock: if
 * example/app/config does not exist (its mod_revision is 0), set it and
 * example/app/flags at one revision; otherwise read it. Returns the
 * transaction's revision.
 */
async function createOnce(kv: KvClient, lines: string[]): Promise<number> {
  const { succeeded, revision, results } = await kv
    .txn()
    .if(Compare.modRevision('example/app/config', '==', 0))
    .then(
      Op.set('example/app/config', { db: { host: 'db.internal', port: 5432 }, tags: ['blue'] }),
      Op.set('example/app/flags', { beta: true }),
    )
    .else(Op.get('example/app/config'))
    .commit();
  const step = 'txn if example/app/config mod_revision == 0 then set example/app/config, set example/app/flags else get example/app/config';
  lines.push(`${step} -> succeeded ${succeeded} revision ${revision}: ${results.map(resultLine).join('; ')}`);
  return revision;
}

function resultLine(result: TxnOpResult): string {
  switch (result.type) {
    case 'set':
      return `set revision ${result.revision}`;
    case 'get':
      // A get of a missing key in a transaction is an empty result, not NOT_FOUND.
      return `get ${result.entry === undefined ? 'NOT_FOUND' : entryLine(result.entry)}`;
    default:
      throw new Error(`unexpected transaction result ${result.type}`);
  }
}

/** What leaseInfo says of the lease a key is attached to (its id differs from run to run, so it is not printed); returns the id. */
async function leaseOf(kv: KvClient, lines: string[], key: string): Promise<number> {
  const lease = (await kv.get(key))?.lease ?? 0;
  const info = lease === 0 ? undefined : await kv.leaseInfo(lease, { keys: true });
  if (info === undefined) throw new Error(`${key} has no lease`);
  if (!(info.remainingMs > 0 && info.remainingMs <= info.ttlMs))
    throw new Error(`lease of ${key}: ${info.remainingMs} ms left of ${info.ttlMs}`);
  lines.push(`lease of ${key} -> granted_ttl_ms ${info.ttlMs} keys ${info.keys.join(' ')}`);
  return lease;
}

/** Pages of entries with values; returns the revision the last page was read at. */
async function entries(kv: KvClient, lines: string[], prefix: string, pageSize: number): Promise<number> {
  let pageToken = '';
  for (let page = 1; ; page++) {
    const { entries, nextPageToken, revision } = await kv.listPage({ prefix, pageSize, pageToken });
    const items = entries.length === 0 ? '(none)' : entries.map((e) => `${e.key}=${compactJson(e.value)}`).join(' ');
    lines.push(`entries ${prefix} page_size ${pageSize} page ${page} revision ${revision} -> ${items}`);
    if (nextPageToken === '') return revision;
    pageToken = nextPageToken;
  }
}

/**
 * The changes under prefix from startRevision on, one line per event, up
 * to revision `until` (here a revision of one event, so the watch can stop
 * at it); breaking out of the loop cancels the stream.
 */
async function watch(kv: KvClient, lines: string[], prefix: string, startRevision: number, until: number): Promise<void> {
  for await (const event of kv.watch({ prefix, startRevision })) {
    if (event.revision > until) return;
    const value = event.type === 'put' ? ` ${compactJson(event.entry?.value ?? null)}` : '';
    lines.push(
      `watch ${prefix} start_revision ${startRevision} -> ${event.type.toUpperCase()} ${event.key} revision ${event.revision}${value}`,
    );
    if (event.revision === until) return;
  }
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

/**
 * docs/storage-format.md's two minimal Python readers, as written there, read
 * a data directory of this version: checkpoint_keys() the keys of a
 * checkpoint written by compaction, records() the records of a log.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { openFileStore } from '../../src/store/file';
import { RecordType } from '../../src/store/file/record-codec';
import { testWithTool } from '../support/find-tool';
import { REPO_ROOT } from '../support/server-process';
import { pollUntil, tempDataDirs } from '../support/temp-dirs';

const { tool: python, test: testPython } = testWithTool('python3');
const dirs = tempDataDirs();
afterAll(() => dirs.cleanup());

/** The doc's ```python blocks, then lines that print what they read from each file named on the command line. */
function readerScript(): string {
  const doc = fs.readFileSync(path.join(REPO_ROOT, 'docs/storage-format.md'), 'utf8');
  const blocks = [...doc.matchAll(/```python\n([\s\S]*?)```/g)].map((m) => m[1]);
  expect(blocks).toHaveLength(2);
  return `${blocks.join('\n')}
import json, sys
for path in sys.argv[1:]:
    if path.endswith('.snap'):
        print(json.dumps({'checkpoint': [[key, json.loads(value)] for key, value, *_ in checkpoint_keys(path)]}))
    else:
        print(json.dumps({'log': [[rtype, revision] for _, rtype, revision, _ in records(path)]}))
`;
}

testPython("docs/storage-format.md's Python readers read this version's checkpoints and logs", async () => {
  const dataDir = dirs.make();
  // 100 writes to 40 keys in one log; reopened with a low threshold, the store checkpoints that log.
  let store = await openFileStore({ dataDir, fsync: 'never' });
  for (let i = 0; i < 100; i++) await store.set(`k/${String(i % 40).padStart(2, '0')}`, { i });
  await store.close();
  const firstLog = path.join(dataDir, 'wal-0000000000000001.log');
  store = await openFileStore({ dataDir, fsync: 'never', compaction: { logMinBytes: 1024, logToLiveRatio: 0 } });
  await pollUntil('the checkpoint of the first log', () => (fs.existsSync(firstLog) ? undefined : true));
  await pollUntil('compaction to finish', () => (store.diskUsage.compacting ? undefined : true));
  await store.set('after', 1);
  await store.delete('k/00');
  await store.close();

  const files = fs
    .readdirSync(dataDir)
    .filter((f) => /\.(log|snap)$/.test(f))
    .sort()
    .map((f) => path.join(dataDir, f));
  const snap = files.filter((f) => f.endsWith('.snap'));
  expect(snap).toHaveLength(1);
  const { stdout } = await promisify(execFile)(python!, ['-c', readerScript(), snap[0], ...files.filter((f) => f.endsWith('.log'))]);
  const [checkpoint, ...logs] = stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { checkpoint?: unknown[]; log?: Array<[number, number]> });
  expect(checkpoint.checkpoint).toEqual(
    Array.from({ length: 40 }, (_, k) => [`k/${String(k).padStart(2, '0')}`, { i: k < 20 ? 80 + k : 40 + k }]),
  );
  expect(logs.flatMap((log) => log.log ?? [])).toEqual([
    [RecordType.Set, 101],
    [RecordType.Delete, 102],
  ]);
});

/**
 * kv's own CPU per Set, without gRPC or the network: the Set row's request
 * decoder (key-value-service.ts), handleSet, the file store and its commit
 * loop, and the response encoder, in process, 64 calls at a time (one batch
 * each). What grpc-js, HTTP/2 and the kernel add on top is the difference to
 * the server's CPU per call in `npm run bench`.
 *
 *   npx tsx bench/set-path-cpu.ts [--fsync never|always] [--concurrency C]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SetRequest } from '../src/gen/kv/v1/kv';
import { openAccess } from '../src/server/access';
import { handleSet } from '../src/server/handlers/set';
import { keyValueServiceDefinition } from '../src/server/key-value-service';
import { openFileStore } from '../src/store/file';
import { VALUE } from './workloads';

function flag(name: string, fallback: string): string {
  const index = process.argv.indexOf(name);
  return index >= 0 ? (process.argv[index + 1] ?? fallback) : fallback;
}

async function main(): Promise<void> {
  const fsync = flag('--fsync', 'never');
  if (fsync !== 'never' && fsync !== 'always') throw new Error('--fsync is never or always');
  const concurrency = Number(flag('--concurrency', '64'));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kv-set-path-'));
  const store = await openFileStore({ dataDir: dir, fsync });
  try {
    const row = keyValueServiceDefinition().set;
    const body = Buffer.from(SetRequest.encode(SetRequest.fromJSON({ key: 'k1', value: VALUE })).finish());
    const context = { store, access: openAccess };
    const call = async (): Promise<void> => {
      const response = await handleSet(context, row.requestDeserialize(body) as SetRequest);
      row.responseSerialize(response);
    };
    for (const [phase, calls] of [
      ['warm-up', 30_000],
      ['measured', 150_000],
    ] as const) {
      const cpuBefore = process.cpuUsage();
      for (let done = 0; done < calls; done += concurrency) await Promise.all(Array.from({ length: concurrency }, call));
      const cpu = process.cpuUsage(cpuBefore);
      if (phase === 'measured') {
        process.stdout.write(
          `Set, fsync ${fsync}, ${concurrency} at a time: ${((cpu.user + cpu.system) / calls).toFixed(1)} µs CPU per call\n`,
        );
      }
    }
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`set-path-cpu: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});

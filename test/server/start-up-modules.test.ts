/**
 * What a start-up loads: the code of a flag not given (Connect for
 * --http-listen, prom-client for --metrics-listen, the YAML parser for
 * --auth-file, the SDK for --restore-from) and reflection (built on its first
 * call) stay unloaded, so that every start-up does not pay for them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { startServer } from '../support/server-process';
import { makeTempDir } from '../support/temp-dirs';

const RECORDER = path.join(__dirname, '../support/record-loaded-modules.cjs');

/** The packages a server loaded from start to exit; the SDK (a workspace) as @kv/client, but for the wire codecs the server shares with it (@kv/client/wire). */
async function packagesLoaded(args: string[]): Promise<Set<string>> {
  const file = path.join(makeTempDir(), 'modules.txt');
  const server = await startServer({ args, nodeArgs: ['--require', RECORDER], env: { KV_LOADED_MODULES_FILE: file } });
  expect(await server.stop()).toBe(0);
  const packages = new Set<string>();
  for (const module of fs.readFileSync(file, 'utf8').split('\n')) {
    const sdk = /\/clients\/typescript\/(?:src|dist)\/(wire\/)?/.exec(module);
    const name =
      /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(module)?.[1] ?? (sdk === null ? undefined : sdk[1] ? '@kv/client/wire' : '@kv/client');
    if (name !== undefined) packages.add(name);
  }
  return packages;
}

const LAZY = ['@connectrpc/connect', '@connectrpc/connect-node', 'prom-client', 'yaml', '@kv/client', '@grpc/reflection', 'protobufjs'];

test('a start-up with no optional flags loads none of their code, nor reflection', async () => {
  const loaded = await packagesLoaded([]);
  // The recorder sees what the server does load.
  expect(loaded).toContain('@grpc/grpc-js');
  expect(LAZY.filter((name) => loaded.has(name))).toEqual([]);
});

test('--http-listen and --metrics-listen load Connect and prom-client', async () => {
  const loaded = await packagesLoaded(['--http-listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0']);
  expect(LAZY.filter((name) => loaded.has(name))).toEqual(expect.arrayContaining(['@connectrpc/connect', 'prom-client']));
});

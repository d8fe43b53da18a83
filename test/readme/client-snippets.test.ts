import { execFile } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { findTool, testWithTool } from '../support/find-tool';
import { REPO_ROOT, startServer } from '../support/server-process';
import { makeTempDir } from '../support/temp-dirs';

/**
 * The TypeScript, Go and Python snippets of the README's Clients section run, as
 * written, against a fresh server (the README's address swapped for the
 * server's), and print what they are meant to: a value read back, a
 * missing key, a lost compare-and-set, a transaction, and the watch that
 * replays it all. The Go snippet becomes the body of a main() in the
 * clients/go module through `go build -overlay`, so nothing is written
 * into the repository.
 */
const run = promisify(execFile);
const README_ADDRESS = '127.0.0.1:50051';
const GO_BUILD_TIMEOUT_MS = 240_000;
const GO_MODULE = path.join(REPO_ROOT, 'clients/go');
const VENV_PYTHON = path.join(REPO_ROOT, 'clients/python/.venv/bin/python');
const { test: testGo } = testWithTool('go');
const testPython = existsSync(VENV_PYTHON) || process.env.KV_REQUIRE_ALL_CLIENTS === '1' ? test : test.skip;

/** The first ```LANG block after the README heading that starts with `heading`. */
function snippet(heading: string, lang: string): string {
  const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf(`\n${heading}`));
  const match = new RegExp('```' + lang + '\\n([\\s\\S]*?)```').exec(section);
  if (match === null || !match[1].includes(README_ADDRESS))
    throw new Error(`no ${lang} snippet dialing ${README_ADDRESS} under ${heading}`);
  return match[1];
}

async function outputOf(client: (address: string) => Promise<string>): Promise<string> {
  const server = await startServer();
  try {
    return await client(server.address);
  } finally {
    await server.stop();
    rmSync(server.dataDir, { recursive: true, force: true });
  }
}

test('the TypeScript snippet of the README runs as written', async () => {
  const dir = makeTempDir('kv-readme-ts-run-');
  try {
    const file = path.join(dir, 'snippet.mts');
    writeFileSync(file, snippet('### TypeScript', 'ts').replace(`'${README_ADDRESS}'`, 'process.argv[2]'));
    // Run from the repository: tsx resolves @kv/client through tsconfig.json's paths, to the SDK's sources.
    const stdout = await outputOf(
      async (address) => (await run(process.execPath, ['--import', 'tsx', file, address], { cwd: REPO_ROOT, timeout: 30_000 })).stdout,
    );
    expect(stdout).toBe(
      [
        '1 5432 1',
        'lost the race; current revision 1',
        'app/config',
        'true 2',
        "put app/config 1 { db: { host: 'db.internal', port: 5432 } }",
        "put app/config 2 { db: { host: 'db.internal', port: 6432 } }",
        'put app/flags 2 { beta: true }',
        '',
      ].join('\n'),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const GO_MAIN = (body: string): string => `package main

import (
	"context"
	"fmt"
	"log"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	kvv1 "github.com/kv-project/kv/clients/go/gen/kv/v1"
)

// The imports a snippet may use; these keep the ones it does not from failing the build.
var (
	_ = fmt.Println
	_ = log.Fatal
	_ = grpc.NewClient
	_ = codes.NotFound
	_ = insecure.NewCredentials
	_ = metadata.MD{}
	_ = status.Code
	_ = proto.Int64
	_ = structpb.NewValue
	_ = kvv1.NewKeyValueServiceClient
)

func main() {
${body.replace(`"${README_ADDRESS}"`, 'os.Args[1]')}}
`;

testGo(
  'the Go snippet of the README runs as written',
  async () => {
    const dir = makeTempDir('kv-readme-go-');
    try {
      writeFileSync(path.join(dir, 'main.go'), GO_MAIN(snippet('### Go', 'go')));
      // A package directory that exists only in the overlay: the snippet builds inside the clients/go module.
      writeFileSync(
        path.join(dir, 'overlay.json'),
        JSON.stringify({ Replace: { [path.join(GO_MODULE, 'cmd/readme-snippet/main.go')]: path.join(dir, 'main.go') } }),
      );
      const binary = path.join(dir, 'readme-snippet');
      await run(findTool('go')!, ['build', '-overlay', path.join(dir, 'overlay.json'), '-o', binary, './cmd/readme-snippet'], {
        cwd: GO_MODULE,
        timeout: GO_BUILD_TIMEOUT_MS,
      });
      const stdout = await outputOf(async (address) => (await run(binary, [address], { timeout: 30_000 })).stdout);
      expect(stdout).toBe(
        [
          'map[db:map[host:db.internal port:5432]] 1',
          'no app/missing',
          'lost the race; current revision 1',
          'true 2',
          'EVENT_TYPE_PUT app/config 1',
          'EVENT_TYPE_PUT app/config 2',
          'EVENT_TYPE_PUT app/flags 2',
          '',
        ].join('\n'),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
  GO_BUILD_TIMEOUT_MS + 30_000,
);

testPython('the Python snippet of the README runs as written', async () => {
  const dir = makeTempDir('kv-readme-python-');
  try {
    const file = path.join(dir, 'snippet.py');
    writeFileSync(file, `import sys\n${snippet('### Python', 'python').replace(`"${README_ADDRESS}"`, 'sys.argv[1]')}`);
    const stdout = await outputOf(
      async (address) =>
        (await run(VENV_PYTHON, [file, address], { timeout: 30_000, env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } })).stdout,
    );
    const [first, ...rest] = stdout.split('\n');
    // A google.protobuf.Struct is a map: MessageToDict gives its members in no fixed order.
    expect(first).toMatch(/^\{'db': \{('host': 'db.internal', 'port': 5432\.0|'port': 5432\.0, 'host': 'db.internal')\}\} 1$/);
    expect(rest).toEqual([
      'no app/missing',
      'lost the race; current revision 1',
      'True 2',
      'EVENT_TYPE_PUT app/config 1',
      'EVENT_TYPE_PUT app/config 2',
      'EVENT_TYPE_PUT app/flags 2',
      '',
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

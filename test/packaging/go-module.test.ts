import { execFile } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { testWithTool } from '../support/find-tool';
import { REPO_ROOT, startServer } from '../support/server-process';
import { makeTempDir } from '../support/temp-dirs';

/**
 * The Go client from a module outside this repository, the way
 * clients/go/README.md says: the module path is not published, so a
 * require plus a replace pointing at a checkout, then go mod tidy.
 */
const run = promisify(execFile);
const GO_TIMEOUT_MS = 240_000;
const MODULE = 'github.com/kv-project/kv/clients/go';
const { tool: go, test: testGo } = testWithTool('go');

const MAIN_GO = `// Command kvuser sets and gets one key with the kv Go client.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"

	kvv1 "${MODULE}/gen/kv/v1"
)

func main() {
	conn, err := grpc.NewClient(os.Args[1], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	kv := kvv1.NewKeyValueServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	value, _ := structpb.NewValue(map[string]any{"from": "go"})
	if _, err := kv.Set(ctx, &kvv1.SetRequest{Key: "module/go", Value: value}); err != nil {
		log.Fatal(err)
	}
	got, err := kv.Get(ctx, &kvv1.GetRequest{Key: "module/go"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(got.GetEntry().GetValue().AsInterface())
}
`;

testGo(
  'a module outside the repository uses the Go client through require + replace',
  async () => {
    const work = makeTempDir('kv-go-consumer-');
    const server = await startServer();
    try {
      const options = { cwd: work, timeout: GO_TIMEOUT_MS, env: { ...process.env, GOFLAGS: '' } };
      await run(go!, ['mod', 'init', 'example.com/kvuser'], options);
      await run(
        go!,
        ['mod', 'edit', '-require', `${MODULE}@v0.0.0`, '-replace', `${MODULE}=${path.join(REPO_ROOT, 'clients/go')}`],
        options,
      );
      writeFileSync(path.join(work, 'main.go'), MAIN_GO);
      await run(go!, ['mod', 'tidy'], options);
      await run(go!, ['build', '-o', 'kvuser', '.'], options);
      const { stdout } = await run(path.join(work, 'kvuser'), [server.address], { timeout: 30_000 });
      expect(stdout).toBe('map[from:go]\n');
    } finally {
      await server.stop();
      rmSync(work, { recursive: true, force: true });
    }
  },
  GO_TIMEOUT_MS * 2,
);

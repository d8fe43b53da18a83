#!/usr/bin/env bash
# Regenerates everything derived from proto/ that needs only npm packages:
# the server's stubs (src/gen), the TypeScript SDK's stubs
# (clients/typescript/src/gen, kv.v1 and grpc.health.v1) and the descriptor sets that server reflection
# serves (src/gen/kv.binpb with imports and doc comments, and
# src/gen/health.binpb for grpc.health.v1 from the grpc-health-check package).
set -euo pipefail
cd "$(dirname "$0")/.."
npx buf lint
npx buf generate
npx buf generate node_modules/grpc-health-check/proto --template buf.gen.sdk-health.yaml
npx buf build -o src/gen/kv.binpb
npx buf build node_modules/grpc-health-check/proto -o src/gen/health.binpb

#!/usr/bin/env bash
# Regenerates the Go and Python client stubs (clients/go/gen,
# clients/python/src/kv_client/gen) from proto/ with buf.gen.clients.yaml. The output is
# committed; CI reruns this and fails on any diff, so it must stay
# byte-for-byte reproducible: every generator is pinned by
# scripts/install-client-tools.sh, which must have run first.
set -euo pipefail
cd "$(dirname "$0")/.."

export PATH="$PWD/.tools/bin:$PATH"
for tool in protoc-gen-go protoc-gen-go-grpc clients/python/.venv/bin/python; do
  if ! command -v "$tool" >/dev/null; then
    echo "generate-clients: $tool is missing; run: bash scripts/install-client-tools.sh" >&2
    exit 1
  fi
done

npx buf generate --template buf.gen.clients.yaml

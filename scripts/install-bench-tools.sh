#!/usr/bin/env bash
# Installs the load generators and the reference servers for `npm run bench`.
# Idempotent: re-running skips what is already in place. Needs root for apt.
# ghz is built from source by the Go toolchain into the project-local
# .tools/bin (gitignored), so the bench never depends on a global install.
set -euo pipefail

GHZ_VERSION="v0.121.0"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$repo/.tools/bin"
mkdir -p "$bin"

# ghz built by `go install` reports its version as "dev"; the module
# version recorded in the binary is the reliable one.
if [[ -x "$bin/ghz" ]] && go version -m "$bin/ghz" 2>/dev/null | grep -qE "^\s+mod\s+github.com/bojand/ghz\s+${GHZ_VERSION}\s"; then
  echo "ghz ${GHZ_VERSION} already in .tools/bin"
else
  echo "building ghz ${GHZ_VERSION} into .tools/bin"
  GOBIN="$bin" go install "github.com/bojand/ghz/cmd/ghz@${GHZ_VERSION}"
fi

# etcd is the reference store; Debian's package is what an operator on this
# distribution would deploy. etcd-client gives etcdctl for sanity checks.
# nghttp2-client gives h2load, the C load generator that ranks the servers:
# it costs the shared cores far less per call than ghz.
missing=()
for pkg in etcd-server etcd-client nghttp2-client; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
  # The package starts a system-wide etcd on 2379/2380; the bench runs its
  # own on free ports, so stop the service to keep it from stealing CPU.
  if command -v systemctl >/dev/null 2>&1; then systemctl disable --now etcd >/dev/null 2>&1 || true; fi
  if [[ -x /etc/init.d/etcd ]]; then /etc/init.d/etcd stop >/dev/null 2>&1 || true; fi
else
  echo "etcd-server, etcd-client and nghttp2-client already installed"
fi

go version -m "$bin/ghz" | awk '$1 == "mod" { print "ghz", $3 }'
etcd --version | head -1
h2load --version | head -1

#!/usr/bin/env bash
# Installs etcd from Debian's packages (etcd-server for /usr/bin/etcd,
# etcd-client for /usr/bin/etcdctl), skipping what is already installed.
# Used by .ci/run and `npm run cluster`. Debian's etcd is 3.4, which kv's
# etcd engine is written against.
set -euo pipefail
missing=()
[ -x /usr/bin/etcd ] || missing+=(etcd-server)
[ -x /usr/bin/etcdctl ] || missing+=(etcd-client)
if [ ${#missing[@]} -eq 0 ]; then
  echo "etcd: $(/usr/bin/etcd --version | head -1) (already installed)"
  exit 0
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-etcd: need root (or sudo) to apt-get install ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
echo "etcd: installing ${missing[*]} with apt-get"
"${sudo[@]}" apt-get update -qq
# The package's own service (if systemd runs it) is not the cluster kv starts; kv's clusters use their own ports.
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "etcd: $(/usr/bin/etcd --version | head -1)"

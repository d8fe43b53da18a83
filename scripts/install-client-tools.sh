#!/usr/bin/env bash
# Installs what the Go and Python clients, the client code generator and the
# interop tests need, at pinned versions, inside the repo:
#   .tools/bin            protoc-gen-go, protoc-gen-go-grpc, grpcurl, gojq
#   clients/python/.venv  grpcio, grpcio-tools, protobuf (clients/python/requirements.txt),
#                         and the kv-client package itself, editable (clients/python)
#   Go caches             clients/go's and test/chaos/go's modules (their go.sum pins them), compiled
# Needs Go, and Python >= 3.10 (clients/python/pyproject.toml's requires-python)
# as python3 on PATH or as $PYTHON; fetches only from the Go module
# proxy and PyPI. Safe to run again: a tool already at its pinned version is
# left alone, and the venv is only touched when requirements.txt or
# pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

# The venv's Python, checked first: pip on an older one would only say it
# finds no such version of grpcio or protobuf.
python=${PYTHON:-python3}
pyproject=$repo/clients/python/pyproject.toml
python_wanted=$(sed -n 's/^requires-python = ">=\([0-9.]*\)"$/\1/p' "$pyproject")
: "${python_wanted:?no requires-python = \">=X.Y\" line in $pyproject}"
python_have=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [[ $(printf '%s\n' "$python_wanted" "$python_have" | sort -V | head -n 1) != "$python_wanted" ]]; then
  echo "install-client-tools: the Python client needs Python >= $python_wanted; $python is $python_have (set PYTHON=/path/to/python3)" >&2
  exit 1
fi

# module@version of each Go tool; bump here and nowhere else.
go_tools=(
  google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
  google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
  github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.4
  # jq's Go port, for the grpcurl interop script: one install path for every tool.
  github.com/itchyny/gojq/cmd/gojq@v0.12.19
)

tools_bin=$repo/.tools/bin
mkdir -p "$tools_bin"

# The version a Go binary was built from, read from its embedded build info.
installed_go_version() {
  go version -m "$1" 2>/dev/null | awk '$1 == "mod" { print $3; exit }'
}

for tool in "${go_tools[@]}"; do
  package=${tool%@*}
  version=${tool##*@}
  binary=$tools_bin/${package##*/}
  if [[ -x $binary && $(installed_go_version "$binary") == "$version" ]]; then
    echo "ok      ${package##*/} $version"
    continue
  fi
  started=$SECONDS
  GOBIN=$tools_bin go install "$tool"
  echo "install ${package##*/} $version ($((SECONDS - started)) s)"
done

# The Go example's dependencies (pinned by clients/go/go.sum), fetched and
# compiled into Go's caches now, so the interop test's own build of it needs
# no network and little CPU while other suites run beside it.
started=$SECONDS
(cd clients/go && go mod download && go build ./...)
echo "build   clients/go ($((SECONDS - started)) s)"

# The chaos run's Go client and its checker (porcupine, pinned by
# test/chaos/go/go.sum), likewise fetched and compiled ahead of npm test.
started=$SECONDS
(cd test/chaos/go && go mod download && go build ./...)
echo "build   test/chaos/go ($((SECONDS - started)) s)"

venv=$repo/clients/python/.venv
requirements=$repo/clients/python/requirements.txt
# A copy of the requirements and pyproject.toml the venv was last built
# from: cheaper and quieter than asking pip to re-resolve on every run.
installed=$venv/requirements.installed.txt
if [[ -f $installed ]] && cmp -s <(cat "$requirements" "$pyproject") "$installed"; then
  echo "ok      python venv"
else
  started=$SECONDS
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --require-virtualenv -r "$requirements"
  # Editable, with the pinned setuptools: the example and the interop test
  # import kv_client from the working tree, so regenerated stubs need no reinstall.
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation --require-virtualenv \
    --editable "$repo/clients/python"
  "$venv/bin/python" -m pip check --disable-pip-version-check >/dev/null
  cat "$requirements" "$pyproject" >"$installed"
  echo "install python venv, $("$venv/bin/python" --version) ($((SECONDS - started)) s)"
fi

cat <<DONE

Go tools:    $tools_bin
Python venv: $venv
Put the Go tools on PATH with:
  export PATH="$tools_bin:\$PATH"
DONE

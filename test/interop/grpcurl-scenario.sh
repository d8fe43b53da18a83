#!/usr/bin/env bash
# The interop scenario (README.md beside this file) through grpcurl, which learns the API
# from server reflection alone: no proto file is given to it. Prints the same
# transcript as the SDK, Go and Python versions.
#
#   test/interop/grpcurl-scenario.sh HOST:PORT
#
# Needs grpcurl and gojq on PATH (scripts/install-client-tools.sh puts both in
# .tools/bin). gojq rather than jq so the one install script covers it.
# The jq programs name their $variables inside single quotes on purpose.
# shellcheck disable=SC2016
set -euo pipefail
addr=${1:?usage: grpcurl-scenario.sh HOST:PORT}

codes=(OK CANCELLED UNKNOWN INVALID_ARGUMENT DEADLINE_EXCEEDED NOT_FOUND ALREADY_EXISTS
  PERMISSION_DENIED RESOURCE_EXHAUSTED FAILED_PRECONDITION ABORTED OUT_OF_RANGE
  UNIMPLEMENTED INTERNAL UNAVAILABLE DATA_LOSS UNAUTHENTICATED)
stderr_file=$(mktemp)
trap 'rm -f "$stderr_file"' EXIT

# rpc METHOD REQUEST_JSON calls kv.v1.KeyValueService/METHOD and sets
#   code      the status code's name (OK, ABORTED, NOT_FOUND, ...)
#   response  the response message as JSON (empty unless OK)
#   verbose   grpcurl's -v report, which alone shows the trailers
rpc() {
  local exit_code=0
  verbose=$(grpcurl -plaintext -v -emit-defaults -format-error -d "$2" "$addr" "kv.v1.KeyValueService/$1" 2>"$stderr_file") || exit_code=$?
  if ((exit_code == 0)); then
    code=OK
    # With -v the response is the block after "Response contents:"; pretty
    # JSON has no blank lines, so the block ends at the first one.
    response=$(awk '/^Response contents:$/ { inside = 1; next } /^$/ { inside = 0 } inside' <<<"$verbose")
    return
  fi
  # -format-error prints a failed call's status as JSON on stderr; anything
  # else there (no server, bad request JSON) is a failure of the script.
  local number
  if ! number=$(gojq -e '.code' "$stderr_file" 2>/dev/null); then
    echo "grpcurl $1 failed (exit $exit_code):" >&2
    cat "$stderr_file" >&2
    exit 1
  fi
  code=${codes[number]}
  response=
}

# trailer NAME: a trailer of the last call, e.g. kv-reason.
trailer() {
  sed -n "s/^$1: //p" <<<"$verbose"
}

# expect_ok STEP: the last call must have succeeded.
expect_ok() {
  if [[ $code != OK ]]; then
    echo "$1: unexpected $code: $(gojq -r '.message' "$stderr_file")" >&2
    exit 1
  fi
}

# set KEY VALUE_JSON [EXPECTED_REVISION]; sets revision.
set_value() {
  local step="set $1" request
  request=$(gojq -nc --arg key "$1" --argjson value "$2" '{key: $key, value: $value}')
  if (($# == 3)); then
    step+=" expected_revision $3"
    request=$(gojq -c --argjson expected "$3" '. + {expected_revision: $expected}' <<<"$request")
  fi
  rpc Set "$request"
  if [[ $code == ABORTED ]]; then
    # Decided by code and trailers, never by the message text.
    echo "$step -> ABORTED $(trailer kv-reason) current_revision $(trailer kv-current-revision)"
    return
  fi
  expect_ok "$step"
  # int64 fields come as JSON strings (the proto3 JSON mapping).
  revision=$(gojq -r '.revision' <<<"$response")
  echo "$step -> revision $revision"
}

get() {
  rpc Get "$(gojq -nc --arg key "$1" '{key: $key}')"
  if [[ $code == NOT_FOUND ]]; then
    echo "get $1 -> NOT_FOUND"
    return
  fi
  expect_ok "get $1"
  # gojq's tojson sorts object keys and adds no spaces: the form every
  # interop client prints.
  gojq -r --arg key "$1" '.entry | "get \($key) -> \(.value | tojson) create_revision \(.createRevision) mod_revision \(.modRevision) version \(.version)"' <<<"$response"
}

# list PREFIX PAGE_SIZE: follows next_page_token (AIP-158) until it is empty.
list() {
  local token="" page=1 keys
  while :; do
    rpc ListKeys "$(gojq -nc --arg prefix "$1" --argjson size "$2" --arg token "$token" '{prefix: $prefix, page_size: $size, page_token: $token}')"
    expect_ok "list $1"
    keys=$(gojq -r '.keys | if length == 0 then "(none)" else join(" ") end' <<<"$response")
    echo "list $1 page_size $2 page $page -> $keys"
    token=$(gojq -r '.nextPageToken' <<<"$response")
    [[ -n $token ]] || return 0
    page=$((page + 1))
  done
}

delete() {
  rpc Delete "$(gojq -nc --arg key "$1" '{key: $key}')"
  expect_ok "delete $1"
  echo "delete $1 -> deleted $(gojq -r '.deleted' <<<"$response")"
}

clear_prefix() {
  rpc Clear "$(gojq -nc --arg prefix "$1" '{prefix: $prefix}')"
  expect_ok "clear $1"
  echo "clear $1 -> deleted_count $(gojq -r '.deletedCount' <<<"$response")"
}

config='{"name": "kv ✓", "db": {"host": "db.internal", "port": 5432}, "tags": ["blue", "green"], "ratio": 0.5, "debug": false, "owner": null}'
set_value example/app/config "$config"
first_revision=$revision
get example/app/config

# Compare-and-set against the revision just read wins; the same stale
# revision a second time loses with ABORTED.
set_value example/app/config "$(gojq -c '.debug = true' <<<"$config")" "$first_revision"
set_value example/app/config '{"debug": false}' "$first_revision"
get example/app/config

set_value example/app/flags 'true'
set_value example/app/limits '[10, 20.5]'
set_value example/readme '"héllo, wörld"'

list example/app/ 2
delete example/app/flags
delete example/app/flags
get example/app/flags
clear_prefix example/app/
list example/app/ 2
get example/readme
clear_prefix example/

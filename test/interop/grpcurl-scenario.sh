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

# A jq expression: an Entry as "JSON create_revision C mod_revision M version V".
# gojq's tojson sorts object keys and adds no spaces: the form every interop
# client prints.
entry_line='"\(.value | tojson) create_revision \(.createRevision) mod_revision \(.modRevision) version \(.version)"'

get() {
  rpc Get "$(gojq -nc --arg key "$1" '{key: $key}')"
  if [[ $code == NOT_FOUND ]]; then
    echo "get $1 -> NOT_FOUND"
    return
  fi
  expect_ok "get $1"
  gojq -r --arg key "$1" '"get \($key) -> \(.entry | '"$entry_line"')"' <<<"$response"
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

# create_once: a create-only transaction, the building block of a lock. If
# example/app/config does not exist (its mod_revision is 0), set it and
# example/app/flags at one revision; otherwise read it. Sets revision to the
# transaction's.
create_once() {
  local step="txn if example/app/config mod_revision == 0 then set example/app/config, set example/app/flags else get example/app/config"
  rpc Txn '{
    "compare": [{"key": "example/app/config", "result": "COMPARE_RESULT_EQUAL", "mod_revision": 0}],
    "success": [
      {"set": {"key": "example/app/config", "value": {"db": {"host": "db.internal", "port": 5432}, "tags": ["blue"]}}},
      {"set": {"key": "example/app/flags", "value": {"beta": true}}}
    ],
    "failure": [{"get": {"key": "example/app/config"}}]
  }'
  expect_ok "$step"
  revision=$(gojq -r '.revision' <<<"$response")
  # A get of a missing key in a transaction is an empty response, not NOT_FOUND.
  gojq -r --arg step "$step" '"\($step) -> succeeded \(.succeeded) revision \(.revision): " + ([.responses[]
    | if .set then "set revision \(.set.revision)"
      elif .get then (.get.entry | if . then "get " + '"$entry_line"' else "get NOT_FOUND" end)
      else error("unexpected result \(.)") end] | join("; "))' <<<"$response"
}

# update KEY PATCH_JSON: a JSON merge patch (RFC 7396), merged on the server.
update() {
  rpc Update "$(gojq -nc --arg key "$1" --argjson patch "$2" '{key: $key, patch: $patch}')"
  expect_ok "update $1"
  gojq -r --arg key "$1" --argjson patch "$2" '"update \($key) \($patch | tojson) -> \(.entry | '"$entry_line"')"' <<<"$response"
}

# set_with_ttl KEY VALUE_JSON TTL_MS: deleted by the server after TTL_MS unless set again.
set_with_ttl() {
  rpc Set "$(gojq -nc --arg key "$1" --argjson value "$2" --argjson ttl "$3" '{key: $key, value: $value, ttl_ms: $ttl}')"
  expect_ok "set $1 ttl_ms $3"
  echo "set $1 ttl_ms $3 -> revision $(gojq -r '.revision' <<<"$response")"
}

# lease_of KEY: what LeaseInfo says of the lease KEY is attached to (its id
# differs from run to run, so it is not printed); sets lease.
lease_of() {
  rpc Get "$(gojq -nc --arg key "$1" '{key: $key}')"
  expect_ok "get $1"
  lease=$(gojq -r '.entry.lease' <<<"$response")
  if [[ $lease == 0 ]]; then
    echo "$1 has no lease" >&2
    exit 1
  fi
  # The id is an int64: a JSON string, passed on as one.
  rpc LeaseInfo "$(gojq -nc --arg id "$lease" '{id: $id, keys: true}')"
  expect_ok "lease of $1"
  gojq -e '(.remainingTtlMs | tonumber) as $left | $left > 0 and $left <= (.grantedTtlMs | tonumber)' <<<"$response" >/dev/null || {
    echo "lease of $1: remaining time out of range: $response" >&2
    exit 1
  }
  gojq -r --arg key "$1" '"lease of \($key) -> granted_ttl_ms \(.grantedTtlMs) keys \(.keys | join(" "))"' <<<"$response"
}

# revoke_lease KEY LEASE: deletes the lease and every key attached to it.
revoke_lease() {
  rpc RevokeLease "$(gojq -nc --arg id "$2" '{id: $id}')"
  expect_ok "revoke lease of $1"
  echo "revoke lease of $1 -> deleted_count $(gojq -r '.deletedCount' <<<"$response")"
}

# entries PREFIX PAGE_SIZE: pages of entries with values; sets revision to
# the revision the last page was read at.
entries() {
  local token="" page=1
  while :; do
    rpc List "$(gojq -nc --arg prefix "$1" --argjson size "$2" --arg token "$token" '{prefix: $prefix, page_size: $size, page_token: $token}')"
    expect_ok "entries $1"
    gojq -r --arg prefix "$1" --argjson size "$2" --argjson page "$page" '"entries \($prefix) page_size \($size) page \($page) revision \(.revision) -> "
      + ([.entries[] | "\(.key)=\(.value | tojson)"] | if length == 0 then "(none)" else join(" ") end)' <<<"$response"
    revision=$(gojq -r '.revision' <<<"$response")
    token=$(gojq -r '.nextPageToken' <<<"$response")
    [[ -n $token ]] || return 0
    page=$((page + 1))
  done
}

# watch PREFIX START_REVISION UNTIL: the changes under PREFIX from
# START_REVISION on, one line per event, up to revision UNTIL. A Watch
# stream never ends by itself: -max-time ends it, with DeadlineExceeded,
# after grpcurl has printed every message (one JSON object each) that came.
watch() {
  local step="watch $1 start_revision $2" exit_code=0 messages
  messages=$(grpcurl -plaintext -emit-defaults -format-error -max-time 2 \
    -d "$(gojq -nc --arg prefix "$1" --argjson start "$2" '{prefix: $prefix, start_revision: $start}')" \
    "$addr" kv.v1.KeyValueService/Watch 2>"$stderr_file") || exit_code=$?
  if ((exit_code != 0)) && [[ $(gojq -r '.code' "$stderr_file" 2>/dev/null) != 4 ]]; then
    echo "grpcurl Watch failed (exit $exit_code):" >&2
    cat "$stderr_file" >&2
    exit 1
  fi
  # Every change up to a message's revision has been sent by the time it comes.
  if ! gojq -se --argjson until "$3" 'any(.[]; (.revision | tonumber) >= $until)' <<<"$messages" >/dev/null; then
    echo "$step: the stream did not reach revision $3 within 2 s: $messages" >&2
    exit 1
  fi
  gojq -r --arg step "$step" --argjson until "$3" '.events[]
    | select((.entry.modRevision | tonumber) <= $until)
    | "\($step) -> \(.type | ltrimstr("EVENT_TYPE_")) \(.entry.key) revision \(.entry.modRevision)"
      + (if .type == "EVENT_TYPE_PUT" then " \(.entry.value | tojson)" else "" end)' <<<"$messages"
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

# A transaction that creates config and flags together, only if config does
# not exist yet, and otherwise reads it: the first run writes both at one
# revision, the second finds config there.
create_once
txn_revision=$revision
create_once
# A JSON merge patch, merged on the server: port changes, owner is added,
# tags (null in the patch) is removed, host is kept.
update example/app/config '{"db": {"port": 6432}, "owner": "ops", "tags": null}'

# A key with a time to live lives on a private lease; revoking that lease
# deletes the key at once, as its expiry would after an hour.
set_with_ttl example/session '{"user": "ada"}' 3600000
lease_of example/session
revoke_lease example/session "$lease"
get example/session

entries example/ 2
# Every change under example/ since the transaction, up to the revision the
# listing was read at: history, replayed in order.
watch example/ "$txn_revision" "$revision"
clear_prefix example/

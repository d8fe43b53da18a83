"""Walks through the kv API with the generated Python client.

Sets a JSON object, reads it back with its revisions, loses a
compare-and-set (ABORTED), pages through keys, deletes, reads a missing key
(NOT_FOUND) and clears a prefix; then runs a create-only transaction (both
branches), merges a JSON merge patch (Update), sets a key with a time to
live and looks at its lease, pages through entries with values, and
watches a prefix, replaying the history from a revision. It prints one line
per step. The interop test runs it against a fresh server and expects the
same lines from every client.

    pip install ./clients/python     # once, into your venv: the kv-client package
    python clients/python/example.py --addr 127.0.0.1:50051
    python clients/python/example.py --addr 127.0.0.1:50061,127.0.0.1:50062   # several frontends

Against a server with TLS and an auth file (docs/security.md), add the CA
that signed the server's certificate, a client certificate for mutual TLS
and a bearer token (for a role with admin on "example/", as it clears it):

    clients/python/.venv/bin/python clients/python/example.py --addr kv.internal:50051 \
        --cacert ca.crt --cert client.crt --key client.key --token "$KV_TOKEN"

It only touches keys under "example/" and removes them at the end.
"""

import argparse
import functools
import ipaddress
import json
import os
import pathlib
import re
import shlex
import ssl
import sys
import threading
import time

import grpc
from google.protobuf import json_format, struct_pb2

from kv_client import kv_pb2, kv_pb2_grpc

DEADLINE_SECONDS = 10


def to_value(obj) -> struct_pb2.Value:
    """Any JSON-compatible Python value (dict, list, str, int, float, bool, None) as a google.protobuf.Value."""
    return json_format.ParseDict(obj, struct_pb2.Value())


def from_value(value: struct_pb2.Value):
    """A google.protobuf.Value as plain Python: dict, list, str, float, bool or None."""
    return json_format.MessageToDict(value)


def compact_json(obj) -> str:
    """JSON with sorted keys and no spaces, the form every interop client prints.

    JSON numbers travel as doubles, so 5432 comes back as 5432.0; whole
    numbers are printed without the ".0", as JavaScript, Go and jq do.
    """

    def whole(o):
        if isinstance(o, float) and o.is_integer():
            return int(o)
        if isinstance(o, dict):
            return {k: whole(v) for k, v in o.items()}
        if isinstance(o, list):
            return [whole(v) for v in o]
        return o

    return json.dumps(whole(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def trailer(error: grpc.RpcError, which: int) -> str:
    """A trailer of a failed call; `which` is a kv.v1.ErrorTrailer value (KV_REASON is the "kv-reason" trailer)."""
    name = kv_pb2.ErrorTrailer.Name(which).lower().replace("_", "-")
    return next((v for k, v in error.trailing_metadata() or () if k == name), "?")


def set_value(kv, key, obj, expected_revision=None):
    """Prints "set KEY [expected_revision N] -> revision R"; a lost compare-and-set is an outcome, not a failure."""
    step = f"set {key}" if expected_revision is None else f"set {key} expected_revision {expected_revision}"
    request = kv_pb2.SetRequest(key=key, value=to_value(obj))
    if expected_revision is not None:
        request.expected_revision = expected_revision  # an optional field: set means "compare"
    try:
        revision = kv.Set(request, timeout=DEADLINE_SECONDS).revision
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.ABORTED:
            raise
        # Decided by code and trailers, never by the message text.
        print(f"{step} -> ABORTED {trailer(error, kv_pb2.KV_REASON)} current_revision {trailer(error, kv_pb2.KV_CURRENT_REVISION)}")
        return None
    print(f"{step} -> revision {revision}")
    return revision


def entry_line(entry) -> str:
    """ "JSON create_revision C mod_revision M version V"."""
    return (
        f"{compact_json(from_value(entry.value))}"
        f" create_revision {entry.create_revision} mod_revision {entry.mod_revision} version {entry.version}"
    )


def get(kv, key):
    try:
        entry = kv.Get(kv_pb2.GetRequest(key=key), timeout=DEADLINE_SECONDS).entry
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            raise
        print(f"get {key} -> NOT_FOUND")
        return
    print(f"get {key} -> {entry_line(entry)}")


def list_keys(kv, prefix, page_size):
    """Pages through the keys under prefix (AIP-158: pass next_page_token back until it is empty)."""
    token, page = "", 1
    while True:
        response = kv.ListKeys(
            kv_pb2.ListKeysRequest(prefix=prefix, page_size=page_size, page_token=token), timeout=DEADLINE_SECONDS
        )
        print(f"list {prefix} page_size {page_size} page {page} -> {' '.join(response.keys) or '(none)'}")
        token, page = response.next_page_token, page + 1
        if not token:
            return


def delete(kv, key):
    deleted = kv.Delete(kv_pb2.DeleteRequest(key=key), timeout=DEADLINE_SECONDS).deleted
    print(f"delete {key} -> deleted {str(deleted).lower()}")


def clear(kv, prefix):
    count = kv.Clear(kv_pb2.ClearRequest(prefix=prefix), timeout=DEADLINE_SECONDS).deleted_count
    print(f"clear {prefix} -> deleted_count {count}")


def create_once(kv):
    """A create-only transaction, the building block of a lock.

    If example/app/config does not exist (its mod_revision is 0), sets it and
    example/app/flags at one revision; otherwise reads it. Prints which
    branch ran and each op's result; returns the transaction's revision.
    """
    step = "txn if example/app/config mod_revision == 0 then set example/app/config, set example/app/flags else get example/app/config"
    config = {"db": {"host": "db.internal", "port": 5432}, "tags": ["blue"]}
    response = kv.Txn(
        kv_pb2.TxnRequest(
            compare=[
                kv_pb2.Compare(key="example/app/config", result=kv_pb2.Compare.COMPARE_RESULT_EQUAL, mod_revision=0),
            ],
            success=[
                kv_pb2.RequestOp(set=kv_pb2.SetRequest(key="example/app/config", value=to_value(config))),
                kv_pb2.RequestOp(set=kv_pb2.SetRequest(key="example/app/flags", value=to_value({"beta": True}))),
            ],
            failure=[kv_pb2.RequestOp(get=kv_pb2.GetRequest(key="example/app/config"))],
        ),
        timeout=DEADLINE_SECONDS,
    )
    results = []
    for op in response.responses:
        kind = op.WhichOneof("response")
        if kind == "set":
            results.append(f"set revision {op.set.revision}")
        elif kind == "get":
            # A get of a missing key in a transaction is an empty response, not NOT_FOUND.
            results.append(f"get {entry_line(op.get.entry)}" if op.get.HasField("entry") else "get NOT_FOUND")
        else:
            raise RuntimeError(f"{step}: unexpected result {op}")
    print(f"{step} -> succeeded {str(response.succeeded).lower()} revision {response.revision}: {'; '.join(results)}")
    return response.revision


def update(kv, key, patch):
    """Merges a JSON merge patch (RFC 7396) into the key's value on the server; prints the entry it made."""
    entry = kv.Update(kv_pb2.UpdateRequest(key=key, patch=to_value(patch)), timeout=DEADLINE_SECONDS).entry
    print(f"update {key} {compact_json(patch)} -> {entry_line(entry)}")


def set_with_ttl(kv, key, obj, ttl_ms):
    """Sets a key that the server deletes after ttl_ms unless it is set again (Redis SET ... PX)."""
    revision = kv.Set(kv_pb2.SetRequest(key=key, value=to_value(obj), ttl_ms=ttl_ms), timeout=DEADLINE_SECONDS).revision
    print(f"set {key} ttl_ms {ttl_ms} -> revision {revision}")


def lease_of(kv, key):
    """Prints what LeaseInfo says of the lease a key is attached to (Entry.lease); returns its id.

    The id differs from run to run, so it is not printed.
    """
    lease = kv.Get(kv_pb2.GetRequest(key=key), timeout=DEADLINE_SECONDS).entry.lease
    if lease == 0:
        raise RuntimeError(f"{key} has no lease")
    info = kv.LeaseInfo(kv_pb2.LeaseInfoRequest(id=lease, keys=True), timeout=DEADLINE_SECONDS)
    if not 0 < info.remaining_ttl_ms <= info.granted_ttl_ms:
        raise RuntimeError(f"lease of {key}: remaining_ttl_ms {info.remaining_ttl_ms} is not within granted_ttl_ms {info.granted_ttl_ms}")
    print(f"lease of {key} -> granted_ttl_ms {info.granted_ttl_ms} keys {' '.join(info.keys)}")
    return lease


def revoke_lease(kv, key, lease):
    """Deletes a lease and every key attached to it, at one revision."""
    count = kv.RevokeLease(kv_pb2.RevokeLeaseRequest(id=lease), timeout=DEADLINE_SECONDS).deleted_count
    print(f"revoke lease of {key} -> deleted_count {count}")


def entries(kv, prefix, page_size):
    """Pages through the entries (keys with values) under prefix; returns the revision the last page was read at."""
    token, page = "", 1
    while True:
        response = kv.List(kv_pb2.ListRequest(prefix=prefix, page_size=page_size, page_token=token), timeout=DEADLINE_SECONDS)
        items = " ".join(f"{e.key}={compact_json(from_value(e.value))}" for e in response.entries) or "(none)"
        print(f"entries {prefix} page_size {page_size} page {page} revision {response.revision} -> {items}")
        token, page = response.next_page_token, page + 1
        if not token:
            return response.revision


def watch(kv, prefix, start_revision, until):
    """Prints the changes under prefix from start_revision on, one line per event, up to revision `until`.

    A watch from a past revision replays the history the server keeps, then
    follows live changes; the stream never ends by itself, so it is
    cancelled once everything up to `until` has come.
    """
    step = f"watch {prefix} start_revision {start_revision}"
    stream = kv.Watch(kv_pb2.WatchRequest(prefix=prefix, start_revision=start_revision), timeout=DEADLINE_SECONDS)
    try:
        for response in stream:
            for event in response.events:
                entry = event.entry
                if entry.mod_revision > until:
                    return
                line = f"{step} -> {kv_pb2.EventType.Name(event.type).removeprefix('EVENT_TYPE_')} {entry.key} revision {entry.mod_revision}"
                if event.type == kv_pb2.EVENT_TYPE_PUT:
                    line += f" {compact_json(from_value(entry.value))}"
                print(line)
            # Every change up to response.revision has been sent (a message
            # without events is progress: nothing changed, the stream is alive).
            if response.revision >= until:
                return
    finally:
        stream.cancel()


def run(kv):
    config = {
        "name": "kv ✓",
        "db": {"host": "db.internal", "port": 5432},
        "tags": ["blue", "green"],
        "ratio": 0.5,
        "debug": False,
        "owner": None,
    }
    revision = set_value(kv, "example/app/config", config)
    get(kv, "example/app/config")

    # Compare-and-set: write only if nobody changed the key since we read it.
    set_value(kv, "example/app/config", {**config, "debug": True}, expected_revision=revision)
    # The same expected revision is stale now: ABORTED, with the current
    # revision in the kv-current-revision trailer.
    set_value(kv, "example/app/config", {"debug": False}, expected_revision=revision)
    get(kv, "example/app/config")

    set_value(kv, "example/app/flags", True)
    set_value(kv, "example/app/limits", [10, 20.5])
    set_value(kv, "example/readme", "héllo, wörld")

    list_keys(kv, "example/app/", 2)
    delete(kv, "example/app/flags")
    delete(kv, "example/app/flags")  # a missing key: deleted false, not an error
    get(kv, "example/app/flags")
    clear(kv, "example/app/")
    list_keys(kv, "example/app/", 2)
    get(kv, "example/readme")

    # A transaction that creates config and flags together, only if config
    # does not exist yet, and otherwise reads it: the first run writes both at
    # one revision, the second finds config there.
    txn_revision = create_once(kv)
    create_once(kv)
    # A JSON merge patch, merged on the server: port changes, owner is added,
    # tags (null in the patch) is removed, host is kept.
    update(kv, "example/app/config", {"db": {"port": 6432}, "owner": "ops", "tags": None})

    # A key with a time to live lives on a private lease; revoking that lease
    # deletes the key at once, as its expiry would after an hour.
    set_with_ttl(kv, "example/session", {"user": "ada"}, 3_600_000)
    lease = lease_of(kv, "example/session")
    revoke_lease(kv, "example/session", lease)
    get(kv, "example/session")

    revision = entries(kv, "example/", 2)
    # Every change under example/ since the transaction, up to the revision
    # the listing was read at: history, replayed in order.
    watch(kv, "example/", txn_revision, revision)
    clear(kv, "example/")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addr", default=os.environ.get("KV_ADDRESS") or "127.0.0.1:50051", help="server host:port, or several frontends as host:port,host:port (env KV_ADDRESS)")
    parser.add_argument("--cacert", help="PEM CA certificate that signed the server's: use TLS")
    parser.add_argument("--cert", help="PEM client certificate, for mutual TLS (with --key)")
    parser.add_argument("--key", help="PEM private key of --cert")
    parser.add_argument("--token", default=os.environ.get("KV_TOKEN"), help="bearer token (env KV_TOKEN); needs TLS unless the server is on this machine")
    args = parser.parse_args()
    check_flags(args)
    # A value of up to 1 MiB as JSON can be several MiB as a google.protobuf.Value;
    # grpcio refuses messages over 4 MiB unless told otherwise.
    options = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]
    if args.cacert is not None:
        credentials = tls_credentials(args)
    elif args.token:
        # Plaintext with a token, to this machine only (as kvctl and the SDK allow): local credentials refuse
        # any connection that is not local, and grpcio sends call credentials only over them or TLS.
        credentials = grpc.composite_channel_credentials(
            grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP), grpc.access_token_call_credentials(args.token)
        )
    else:
        credentials = None

    def channel(address):
        if credentials is None:
            return grpc.insecure_channel(address, options=options)
        return grpc.secure_channel(address, credentials, options=options)

    addresses = args.addr.split(",")
    if len(addresses) == 1:
        with channel(args.addr) as one:
            run(kv_pb2_grpc.KeyValueServiceStub(one))
    else:
        with Frontends([channel(address) for address in addresses]) as frontends:
            run(frontends)


def usage_error(message: str):
    """A flag misused: one line, and exit 2 (as kvctl, and argparse for its own errors)."""
    print(f"kv-example: {message}", file=sys.stderr)
    sys.exit(2)


def check_flags(args):
    """Refuses, before any channel is made, the flags grpcio would take badly.

    Given a client certificate without its key (or the reverse), grpcio's C
    core aborts the whole process (SIGABRT); an empty file name would reach
    it as no file at all; an empty address or a token that cannot be a
    header value fails only at the first call, among lines of its logging.
    """
    if any(address.strip() == "" for address in args.addr.split(",")):
        usage_error(f"--addr: an address is empty in {args.addr!r}")
    for flag in ("cacert", "cert", "key"):
        if getattr(args, flag) == "":
            usage_error(f"--{flag}: the file name is empty")
    if (args.cert is None) != (args.key is None):
        usage_error("--cert and --key go together")
    if args.cacert is None and args.cert:
        usage_error("--cert and --key need TLS: give --cacert too")
    if args.cacert is None and args.token and not all_loopback(args.addr):
        # A token over plaintext would be readable by anyone on the path; say so rather than drop it.
        usage_error("--token needs TLS to a server that is not on this machine: give --cacert too")
    if args.token and not re.fullmatch(r"[\x21-\x7e]+", args.token):
        usage_error("--token (env KV_TOKEN) must be printable ASCII without spaces (it travels in an HTTP/2 header)")


def all_loopback(addr):
    """Whether every host:port of addr (comma-separated) is on this machine: localhost, 127.0.0.0/8 or ::1."""
    for address in addr.split(","):
        host = address.strip().rpartition(":")[0].strip("[]")
        if host == "localhost":
            continue
        try:
            if not ipaddress.ip_address(host).is_loopback:
                return False
        except ValueError:
            return False
    return True


class Frontends:
    """Several frontends of one deployment, one channel each, used like one KeyValueServiceStub.

    A channel per frontend resolves each host:port as if it were the only
    one (a name, an IPv4 or an [IPv6] literal) and, with TLS, checks that
    frontend's certificate against its own host. grpcio's list targets
    (ipv4:a,b) take IP literals of one family only, and check every
    frontend's certificate against one name.

    Each call goes to the next frontend in turn whose connection is up, as
    gRPC's round_robin balancer would pick, waiting while the others are
    still connecting. A failed call is not retried: a write may have been
    applied.
    """

    def __init__(self, channels):
        self._channels = channels
        self._stubs = [kv_pb2_grpc.KeyValueServiceStub(channel) for channel in channels]
        self._states = [None] * len(channels)  # None: not heard from yet
        self._closed = False
        self._changed = threading.Condition()
        self._watchers = [functools.partial(self._record, i) for i in range(len(channels))]
        self._next = 0
        for channel, watcher in zip(channels, self._watchers):
            # try_to_connect: each channel starts connecting now, not at its first call.
            channel.subscribe(watcher, try_to_connect=True)

    def _record(self, i, state):
        # Called on grpcio's own threads.
        with self._changed:
            if self._closed:
                return
            if state == grpc.ChannelConnectivity.IDLE and self._states[i] is not None:
                # Its connection was closed (the frontend went away, or dropped it as
                # idle) and nothing reconnects it until asked: ask now, as round_robin
                # does. (Its first report is IDLE too: subscribe has asked already.)
                self._channels[i].subscribe(_ignore, try_to_connect=True)
                self._channels[i].unsubscribe(_ignore)
            self._states[i] = state
            self._changed.notify_all()

    def _pick(self):
        ready = grpc.ChannelConnectivity.READY
        # Not up, but asked to connect (see _record): a channel reports IDLE before
        # CONNECTING. A call sent to one not yet up fails if its connecting fails.
        connecting = (None, grpc.ChannelConnectivity.IDLE, grpc.ChannelConnectivity.CONNECTING)
        deadline = time.monotonic() + DEADLINE_SECONDS
        with self._changed:
            while ready not in self._states and any(s in connecting for s in self._states) and time.monotonic() < deadline:
                self._changed.wait(deadline - time.monotonic())
            turn = [(self._next + k) % len(self._stubs) for k in range(len(self._stubs))]
            self._next = (self._next + 1) % len(self._stubs)
            # Up; else (all failed, or none up after DEADLINE_SECONDS) the next in turn:
            # its call fails UNAVAILABLE with its reason, or waits for it until its deadline.
            chosen = next((i for i in turn if self._states[i] == ready), turn[0])
            return self._stubs[chosen]

    def __getattr__(self, method):
        return lambda *args, **kwargs: getattr(self._pick(), method)(*args, **kwargs)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        with self._changed:
            self._closed = True  # no more asking a channel to connect (_record): it is closing
        for channel, watcher in zip(self._channels, self._watchers):
            channel.unsubscribe(watcher)
            channel.close()


def _ignore(_state):
    """A subscriber that only asks a channel to connect (Frontends._record)."""


def tls_credentials(args) -> grpc.ChannelCredentials:
    """TLS trusting --cacert, with a client certificate if given, and the token on every call.

    Each file is checked first, so that one that is not what its flag needs
    is one line naming it: grpcio takes an empty file as none (and aborts
    if that leaves a certificate without its key), and reports a bad one
    only at the first call, among lines of its logging.

    access_token_call_credentials sends "authorization: Bearer <token>";
    grpcio attaches call credentials only to secure channels, so the token
    never travels in clear.
    """
    ca = read_pem(args.cacert, "--cacert")
    holds_certificate(ca, args.cacert, "--cacert")
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=ca.decode("latin-1"))
    except ssl.SSLError as error:
        sys.exit(f"kv-example: --cacert: {args.cacert} cannot be read as CA certificates: {error}")
    cert = key = None
    if args.cert is not None:
        cert, key = read_pem(args.cert, "--cert"), read_pem(args.key, "--key")
        holds_certificate(cert, args.cert, "--cert")
        check_private_key(key, args.key)
        try:
            # An encrypted key was refused above; the empty passphrase keeps OpenSSL from
            # asking for one on the terminal, should a form of encryption have been missed.
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(args.cert, args.key, password=lambda: b"")
        except ssl.SSLError as error:
            if error.reason == "KEY_VALUES_MISMATCH":
                sys.exit(f"kv-example: --key {args.key} is not the private key of --cert {args.cert} (they do not match)")
            sys.exit(f"kv-example: --cert {args.cert} and --key {args.key} cannot be used: {error}")
    tls = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)
    if args.token:
        return grpc.composite_channel_credentials(tls, grpc.access_token_call_credentials(args.token))
    return tls


def read_pem(path: str, flag: str) -> bytes:
    try:
        return pathlib.Path(path).read_bytes()
    except OSError as error:
        sys.exit(f"kv-example: {flag}: cannot read {path}: {error.strerror}")


def holds_certificate(pem: bytes, path: str, flag: str):
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        sys.exit(f'kv-example: {flag}: {path} holds no PEM certificate ("-----BEGIN CERTIFICATE-----")')


def check_private_key(pem: bytes, path: str):
    """A PEM private key that grpcio can use: it takes no passphrase."""
    if b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in pem or re.search(rb"^Proc-Type:[ \t]*4,[ \t]*ENCRYPTED", pem, re.MULTILINE):
        sys.exit(
            f"kv-example: --key: {path} is encrypted (passphrase-protected), and grpcio takes no passphrase: write a decrypted "
            f'copy with "openssl pkey -in {shlex.quote(path)} -out key.pem" (it asks for the passphrase) and give that'
        )
    if not re.search(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----", pem):
        sys.exit(f'kv-example: --key: {path} holds no PEM private key ("-----BEGIN PRIVATE KEY-----")')


def failure_line(error: BaseException) -> str:
    """A failure as one line, as the Go example prints it: a call's code, kv's reason and message; a file's error."""
    if isinstance(error, grpc.RpcError):
        reason = trailer(error, kv_pb2.KV_REASON)
        return f"{error.code().name} ({reason}): {error.details()}" if reason != "?" else f"{error.code().name}: {error.details()}"
    return str(error)


if __name__ == "__main__":
    try:
        main()
    except (grpc.RpcError, OSError) as error:
        # A call that failed, or a file gone between its check and its use: one line, not a traceback.
        sys.exit(f"kv-example: {failure_line(error)}")

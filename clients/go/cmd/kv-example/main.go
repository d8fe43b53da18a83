// Command kv-example walks through the kv API with the generated Go client:
// set a JSON object, read it back with its revisions, lose a compare-and-set
// (ABORTED), page through keys, delete, read a missing key (NOT_FOUND),
// clear a prefix; then a create-only transaction (both branches), a JSON
// merge patch (Update), a key with a time to live and its lease, a page of
// entries with values, and a watch of a prefix replaying the history from
// a revision. It prints one line per step; the interop test runs it against
// a fresh server and expects the same lines from every client.
//
//	go run ./cmd/kv-example -addr 127.0.0.1:50051
//	go run ./cmd/kv-example -addr 127.0.0.1:50061,127.0.0.1:50062   # several frontends (etcd engine)
//
// Against a server with TLS and an auth file (docs/security.md), add the CA
// that signed the server's certificate, a client certificate for mutual TLS,
// and a bearer token (for a role with admin on "example/", as it clears it):
//
//	go run ./cmd/kv-example -addr kv.internal:50051 -cacert ca.crt -cert client.crt -key client.key -token "$KV_TOKEN"
//
// It only touches keys under "example/" and removes them at the end.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/credentials/local"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	kvv1 "github.com/kv-project/kv/clients/go/gen/kv/v1"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("kv-example: ")
	addr := flag.String("addr", envOr("KV_ADDRESS", "127.0.0.1:50051"), "server host:port, or several frontends as host:port,host:port (env KV_ADDRESS)")
	caCert := flag.String("cacert", "", "PEM CA certificate that signed the server's: use TLS")
	cert := flag.String("cert", "", "PEM client certificate, for mutual TLS (with -key)")
	key := flag.String("key", "", "PEM private key of -cert")
	token := flag.String("token", os.Getenv("KV_TOKEN"), "bearer token from `kv-server token create` (env KV_TOKEN); needs TLS unless the server is on this machine")
	flag.Parse()
	flag.Visit(func(f *flag.Flag) {
		// An empty file name (an unset variable in "-cacert $CA") would otherwise
		// read as the flag not given: plaintext, or no client certificate.
		if (f.Name == "cacert" || f.Name == "cert" || f.Name == "key") && f.Value.String() == "" {
			usageError("-" + f.Name + ": the file name is empty")
		}
	})
	for _, a := range strings.Split(*addr, ",") {
		if strings.TrimSpace(a) == "" {
			usageError(fmt.Sprintf("-addr: an address is empty in %q", *addr))
		}
	}
	if (*cert == "") != (*key == "") {
		usageError("-cert and -key go together")
	}
	if *caCert == "" && *cert != "" {
		usageError("-cert and -key need TLS: give -cacert too")
	}
	if *caCert == "" && *token != "" && !allLoopback(*addr) {
		// A token over plaintext would be readable by anyone on the path; say so rather than drop it.
		usageError("-token needs TLS to a server that is not on this machine: give -cacert too")
	}

	// A value of up to 1 MiB as JSON can be several MiB as a google.protobuf.Value;
	// grpc-go refuses responses over 4 MiB unless told otherwise.
	options := []grpc.DialOption{grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64 << 20))}
	if *caCert == "" && *token != "" {
		// Plaintext with a token, to this machine only (as kvctl and the SDK allow): local credentials refuse
		// any connection that is not local, so the token cannot leave it.
		options = append(options, grpc.WithTransportCredentials(local.NewCredentials()))
	} else if *caCert == "" {
		options = append(options, grpc.WithTransportCredentials(insecure.NewCredentials()))
	} else {
		tlsConfig, err := clientTLS(*caCert, *cert, *key)
		if err != nil {
			log.Fatal(err)
		}
		options = append(options, grpc.WithTransportCredentials(credentials.NewTLS(tlsConfig)))
	}
	if *token != "" && *caCert == "" {
		options = append(options, grpc.WithPerRPCCredentials(localBearerToken(*token)))
	} else if *token != "" {
		options = append(options, grpc.WithPerRPCCredentials(bearerToken(*token)))
	}
	conn, err := dial(*addr, options)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	if err := run(kvv1.NewKeyValueServiceClient(conn)); err != nil {
		log.Fatal(err)
	}
}

// usageError reports a misused flag in one line and exits 2, as the flag
// package does for its own errors.
func usageError(message string) {
	log.Print(message)
	os.Exit(2)
}

// clientTLS trusts the CA in caFile for the server's certificate and, given
// certFile and keyFile, presents that client certificate (mutual TLS).
func clientTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no PEM certificate in %s", caFile)
	}
	config := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, err
		}
		config.Certificates = []tls.Certificate{pair}
	}
	return config, nil
}

// bearerToken sends "authorization: Bearer <token>" with every call, and
// only over TLS: grpc-go refuses per-RPC credentials that require transport
// security on a plaintext connection, so the token never travels in clear.
type bearerToken string

func (t bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(t)}, nil
}

func (bearerToken) RequireTransportSecurity() bool { return true }

// localBearerToken is a bearer token over plaintext to this machine, on a
// connection local.NewCredentials made (which refuses any other).
type localBearerToken string

func (t localBearerToken) GetRequestMetadata(ctx context.Context, uri ...string) (map[string]string, error) {
	return bearerToken(t).GetRequestMetadata(ctx, uri...)
}

func (localBearerToken) RequireTransportSecurity() bool { return false }

// allLoopback says whether every host:port of addr (a comma-separated list)
// is on this machine: localhost, 127.0.0.0/8 or ::1.
func allLoopback(addr string) bool {
	for _, a := range strings.Split(addr, ",") {
		host, _, err := net.SplitHostPort(strings.TrimSpace(a))
		if err != nil {
			return false
		}
		if host == "localhost" {
			continue
		}
		ip := net.ParseIP(host)
		if ip == nil || !ip.IsLoopback() {
			return false
		}
	}
	return true
}

// dial connects to one server, or to several frontends of one deployment
// (host:port,host:port): grpc-go's own pieces then spread the calls, a
// resolver with the fixed list and the round_robin balancer, which sends
// each call to a frontend whose connection is up.
func dial(addr string, options []grpc.DialOption) (*grpc.ClientConn, error) {
	addrs := strings.Split(addr, ",")
	if len(addrs) == 1 {
		return grpc.NewClient(addr, options...)
	}
	frontends := manual.NewBuilderWithScheme("kv-frontends")
	state := resolver.State{}
	for _, a := range addrs {
		// ServerName: each frontend's certificate is checked against its own
		// host, and its calls carry its host:port as :authority, as if it had
		// been dialled alone; without it, TLS would check the target's name
		// ("kv" below) for every one of them.
		state.Addresses = append(state.Addresses, resolver.Address{Addr: a, ServerName: a})
	}
	frontends.InitialState(state)
	options = append(options, grpc.WithResolvers(frontends),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig": [{"round_robin": {}}]}`))
	return grpc.NewClient(frontends.Scheme()+":///kv", options...)
}

func run(kv kvv1.KeyValueServiceClient) error {
	// Any JSON value becomes a google.protobuf.Value; structpb builds one from
	// plain Go maps, slices, strings, float64s, bools and nil.
	config := map[string]any{
		"name":  "kv ✓",
		"db":    map[string]any{"host": "db.internal", "port": 5432},
		"tags":  []any{"blue", "green"},
		"ratio": 0.5,
		"debug": false,
		"owner": nil,
	}
	revision, err := set(kv, "example/app/config", config, nil)
	if err != nil {
		return err
	}
	if err := get(kv, "example/app/config"); err != nil {
		return err
	}

	// Compare-and-set: write only if nobody changed the key since we read it.
	config["debug"] = true
	if _, err := set(kv, "example/app/config", config, &revision); err != nil {
		return err
	}
	// The same expected revision is stale now: the server answers ABORTED,
	// with the key's current revision in the kv-current-revision trailer.
	if _, err := set(kv, "example/app/config", map[string]any{"debug": false}, &revision); err != nil {
		return err
	}
	if err := get(kv, "example/app/config"); err != nil {
		return err
	}

	for _, entry := range []struct {
		key   string
		value any
	}{
		{"example/app/flags", true},
		{"example/app/limits", []any{10, 20.5}},
		{"example/readme", "héllo, wörld"},
	} {
		if _, err := set(kv, entry.key, entry.value, nil); err != nil {
			return err
		}
	}

	if err := list(kv, "example/app/", 2); err != nil {
		return err
	}
	if err := deleteKey(kv, "example/app/flags"); err != nil {
		return err
	}
	// Deleting a missing key is not an error: deleted comes back false.
	if err := deleteKey(kv, "example/app/flags"); err != nil {
		return err
	}
	if err := get(kv, "example/app/flags"); err != nil {
		return err
	}
	if err := clearPrefix(kv, "example/app/"); err != nil {
		return err
	}
	if err := list(kv, "example/app/", 2); err != nil {
		return err
	}
	if err := get(kv, "example/readme"); err != nil {
		return err
	}

	// A transaction that creates config and flags together, only if config
	// does not exist yet, and otherwise reads it: the first run writes both
	// at one revision, the second finds config there.
	txnRevision, err := createOnce(kv)
	if err != nil {
		return err
	}
	if _, err := createOnce(kv); err != nil {
		return err
	}
	// A JSON merge patch, merged on the server: port changes, owner is
	// added, tags (null in the patch) is removed, host is kept.
	patch := map[string]any{"db": map[string]any{"port": 6432}, "owner": "ops", "tags": nil}
	if err := update(kv, "example/app/config", patch); err != nil {
		return err
	}

	// A key with a time to live lives on a private lease; revoking that lease
	// deletes the key at once, as its expiry would after an hour.
	if err := setWithTTL(kv, "example/session", map[string]any{"user": "ada"}, 3_600_000); err != nil {
		return err
	}
	lease, err := leaseOf(kv, "example/session")
	if err != nil {
		return err
	}
	if err := revokeLease(kv, "example/session", lease); err != nil {
		return err
	}
	if err := get(kv, "example/session"); err != nil {
		return err
	}

	revision, err = entries(kv, "example/", 2)
	if err != nil {
		return err
	}
	// Every change under example/ since the transaction, up to the revision
	// the listing was read at: history, replayed in order.
	if err := watch(kv, "example/", txnRevision, revision); err != nil {
		return err
	}
	return clearPrefix(kv, "example/")
}

// set prints "set KEY [expected_revision N] -> revision R" or the error; a
// lost compare-and-set is an expected outcome, not a failure.
func set(kv kvv1.KeyValueServiceClient, key string, value any, expectedRevision *int64) (int64, error) {
	v, err := structpb.NewValue(value)
	if err != nil {
		return 0, fmt.Errorf("%s: not a JSON value: %w", key, err)
	}
	step := "set " + key
	if expectedRevision != nil {
		step += fmt.Sprintf(" expected_revision %d", *expectedRevision)
	}
	ctx, cancel := callContext()
	defer cancel()
	var trailer metadata.MD
	res, err := kv.Set(ctx, &kvv1.SetRequest{Key: key, Value: v, ExpectedRevision: expectedRevision}, grpc.Trailer(&trailer))
	if status.Code(err) == codes.Aborted {
		// Decided by code and trailers, never by the message text.
		fmt.Printf("%s -> ABORTED %s current_revision %s\n", step, first(trailer, kvv1.ErrorTrailer_KV_REASON), first(trailer, kvv1.ErrorTrailer_KV_CURRENT_REVISION))
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("%s: %w", step, err)
	}
	fmt.Printf("%s -> revision %d\n", step, res.GetRevision())
	return res.GetRevision(), nil
}

// get prints "get KEY -> JSON create_revision C mod_revision M version V",
// or "get KEY -> NOT_FOUND".
func get(kv kvv1.KeyValueServiceClient, key string) error {
	ctx, cancel := callContext()
	defer cancel()
	res, err := kv.Get(ctx, &kvv1.GetRequest{Key: key})
	if status.Code(err) == codes.NotFound {
		fmt.Printf("get %s -> NOT_FOUND\n", key)
		return nil
	}
	if err != nil {
		return fmt.Errorf("get %s: %w", key, err)
	}
	line, err := entryLine(res.GetEntry())
	if err != nil {
		return err
	}
	fmt.Printf("get %s -> %s\n", key, line)
	return nil
}

// entryLine is "JSON create_revision C mod_revision M version V".
func entryLine(e *kvv1.Entry) (string, error) {
	value, err := compactJSON(e.GetValue())
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s create_revision %d mod_revision %d version %d", value, e.GetCreateRevision(), e.GetModRevision(), e.GetVersion()), nil
}

// createOnce is a create-only transaction, the building block of a lock:
// if example/app/config does not exist (its mod_revision is 0), set it and
// example/app/flags at one revision; otherwise read it. It prints which
// branch ran and each op's result, and returns the transaction's revision.
func createOnce(kv kvv1.KeyValueServiceClient) (int64, error) {
	const step = "txn if example/app/config mod_revision == 0 then set example/app/config, set example/app/flags else get example/app/config"
	config, err := structpb.NewValue(map[string]any{"db": map[string]any{"host": "db.internal", "port": 5432}, "tags": []any{"blue"}})
	if err != nil {
		return 0, err
	}
	flags, err := structpb.NewValue(map[string]any{"beta": true})
	if err != nil {
		return 0, err
	}
	ctx, cancel := callContext()
	defer cancel()
	res, err := kv.Txn(ctx, &kvv1.TxnRequest{
		Compare: []*kvv1.Compare{{
			Key:         "example/app/config",
			Result:      kvv1.Compare_COMPARE_RESULT_EQUAL,
			TargetUnion: &kvv1.Compare_ModRevision{ModRevision: 0},
		}},
		Success: []*kvv1.RequestOp{
			{Request: &kvv1.RequestOp_Set{Set: &kvv1.SetRequest{Key: "example/app/config", Value: config}}},
			{Request: &kvv1.RequestOp_Set{Set: &kvv1.SetRequest{Key: "example/app/flags", Value: flags}}},
		},
		Failure: []*kvv1.RequestOp{
			{Request: &kvv1.RequestOp_Get{Get: &kvv1.GetRequest{Key: "example/app/config"}}},
		},
	})
	if err != nil {
		return 0, fmt.Errorf("%s: %w", step, err)
	}
	var results []string
	for _, op := range res.GetResponses() {
		switch r := op.GetResponse().(type) {
		case *kvv1.ResponseOp_Set:
			results = append(results, fmt.Sprintf("set revision %d", r.Set.GetRevision()))
		case *kvv1.ResponseOp_Get:
			// A get of a missing key in a transaction is an empty response, not NOT_FOUND.
			if r.Get.GetEntry() == nil {
				results = append(results, "get NOT_FOUND")
				continue
			}
			line, err := entryLine(r.Get.GetEntry())
			if err != nil {
				return 0, err
			}
			results = append(results, "get "+line)
		default:
			return 0, fmt.Errorf("%s: unexpected result %v", step, op)
		}
	}
	fmt.Printf("%s -> succeeded %t revision %d: %s\n", step, res.GetSucceeded(), res.GetRevision(), strings.Join(results, "; "))
	return res.GetRevision(), nil
}

// update merges a JSON merge patch (RFC 7396) into a key's value on the
// server and prints the entry it made.
func update(kv kvv1.KeyValueServiceClient, key string, patch any) error {
	p, err := structpb.NewValue(patch)
	if err != nil {
		return fmt.Errorf("%s: not a JSON patch: %w", key, err)
	}
	patchJSON, err := compactJSON(p)
	if err != nil {
		return err
	}
	ctx, cancel := callContext()
	defer cancel()
	res, err := kv.Update(ctx, &kvv1.UpdateRequest{Key: key, Patch: p})
	if err != nil {
		return fmt.Errorf("update %s: %w", key, err)
	}
	line, err := entryLine(res.GetEntry())
	if err != nil {
		return err
	}
	fmt.Printf("update %s %s -> %s\n", key, patchJSON, line)
	return nil
}

// setWithTTL sets a key that the server deletes after ttlMs unless it is set
// again (Redis SET ... PX).
func setWithTTL(kv kvv1.KeyValueServiceClient, key string, value any, ttlMs int64) error {
	v, err := structpb.NewValue(value)
	if err != nil {
		return fmt.Errorf("%s: not a JSON value: %w", key, err)
	}
	ctx, cancel := callContext()
	defer cancel()
	res, err := kv.Set(ctx, &kvv1.SetRequest{Key: key, Value: v, TtlMs: ttlMs})
	if err != nil {
		return fmt.Errorf("set %s ttl_ms %d: %w", key, ttlMs, err)
	}
	fmt.Printf("set %s ttl_ms %d -> revision %d\n", key, ttlMs, res.GetRevision())
	return nil
}

// leaseOf reads the lease a key is attached to (Entry.lease) and prints what
// LeaseInfo says of it: the time to live it was granted and its keys. The
// id itself differs from run to run, so it is not printed.
func leaseOf(kv kvv1.KeyValueServiceClient, key string) (int64, error) {
	ctx, cancel := callContext()
	defer cancel()
	got, err := kv.Get(ctx, &kvv1.GetRequest{Key: key})
	if err != nil {
		return 0, fmt.Errorf("get %s: %w", key, err)
	}
	lease := got.GetEntry().GetLease()
	if lease == 0 {
		return 0, fmt.Errorf("%s has no lease", key)
	}
	info, err := kv.LeaseInfo(ctx, &kvv1.LeaseInfoRequest{Id: lease, Keys: true})
	if err != nil {
		return 0, fmt.Errorf("lease of %s: %w", key, err)
	}
	if info.GetRemainingTtlMs() <= 0 || info.GetRemainingTtlMs() > info.GetGrantedTtlMs() {
		return 0, fmt.Errorf("lease of %s: remaining_ttl_ms %d is not within granted_ttl_ms %d", key, info.GetRemainingTtlMs(), info.GetGrantedTtlMs())
	}
	fmt.Printf("lease of %s -> granted_ttl_ms %d keys %s\n", key, info.GetGrantedTtlMs(), strings.Join(info.GetKeys(), " "))
	return lease, nil
}

// revokeLease deletes a lease and every key attached to it, at one revision.
func revokeLease(kv kvv1.KeyValueServiceClient, key string, lease int64) error {
	ctx, cancel := callContext()
	defer cancel()
	res, err := kv.RevokeLease(ctx, &kvv1.RevokeLeaseRequest{Id: lease})
	if err != nil {
		return fmt.Errorf("revoke lease of %s: %w", key, err)
	}
	fmt.Printf("revoke lease of %s -> deleted_count %d\n", key, res.GetDeletedCount())
	return nil
}

// entries pages through the entries (keys with values) under prefix, one
// line per page, and returns the revision the last page was read at.
func entries(kv kvv1.KeyValueServiceClient, prefix string, pageSize int32) (int64, error) {
	token := ""
	for page := 1; ; page++ {
		ctx, cancel := callContext()
		res, err := kv.List(ctx, &kvv1.ListRequest{Prefix: prefix, PageSize: pageSize, PageToken: token})
		cancel()
		if err != nil {
			return 0, fmt.Errorf("entries %s: %w", prefix, err)
		}
		var items []string
		for _, e := range res.GetEntries() {
			value, err := compactJSON(e.GetValue())
			if err != nil {
				return 0, err
			}
			items = append(items, e.GetKey()+"="+value)
		}
		if len(items) == 0 {
			items = []string{"(none)"}
		}
		fmt.Printf("entries %s page_size %d page %d revision %d -> %s\n", prefix, pageSize, page, res.GetRevision(), strings.Join(items, " "))
		if token = res.GetNextPageToken(); token == "" {
			return res.GetRevision(), nil
		}
	}
}

// watch streams the changes under prefix from revision from, one line per
// event, until it has seen everything up to revision until; then it ends
// the stream by cancelling the call. A watch from a past revision replays
// the history the server keeps, then follows live changes.
func watch(kv kvv1.KeyValueServiceClient, prefix string, from, until int64) error {
	step := fmt.Sprintf("watch %s start_revision %d", prefix, from)
	ctx, cancel := callContext()
	defer cancel()
	stream, err := kv.Watch(ctx, &kvv1.WatchRequest{Target: &kvv1.WatchRequest_Prefix{Prefix: prefix}, StartRevision: from})
	if err != nil {
		return fmt.Errorf("%s: %w", step, err)
	}
	for {
		res, err := stream.Recv()
		if err != nil {
			return fmt.Errorf("%s: %w", step, err)
		}
		for _, event := range res.GetEvents() {
			e := event.GetEntry()
			if e.GetModRevision() > until {
				return nil
			}
			line := fmt.Sprintf("%s -> %s %s revision %d", step, strings.TrimPrefix(event.GetType().String(), "EVENT_TYPE_"), e.GetKey(), e.GetModRevision())
			if event.GetType() == kvv1.EventType_EVENT_TYPE_PUT {
				value, err := compactJSON(e.GetValue())
				if err != nil {
					return err
				}
				line += " " + value
			}
			fmt.Println(line)
		}
		// Every change up to res.Revision has been sent (a message with no
		// events is progress: the stream is alive, nothing changed).
		if res.GetRevision() >= until {
			return nil
		}
	}
}

// list pages through the keys under prefix (AIP-158: pass next_page_token
// back until it is empty), printing one line per page.
func list(kv kvv1.KeyValueServiceClient, prefix string, pageSize int32) error {
	token := ""
	for page := 1; ; page++ {
		ctx, cancel := callContext()
		res, err := kv.ListKeys(ctx, &kvv1.ListKeysRequest{Prefix: prefix, PageSize: pageSize, PageToken: token})
		cancel()
		if err != nil {
			return fmt.Errorf("list %s: %w", prefix, err)
		}
		keys := strings.Join(res.GetKeys(), " ")
		if keys == "" {
			keys = "(none)"
		}
		fmt.Printf("list %s page_size %d page %d -> %s\n", prefix, pageSize, page, keys)
		if token = res.GetNextPageToken(); token == "" {
			return nil
		}
	}
}

func deleteKey(kv kvv1.KeyValueServiceClient, key string) error {
	ctx, cancel := callContext()
	defer cancel()
	res, err := kv.Delete(ctx, &kvv1.DeleteRequest{Key: key})
	if err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	fmt.Printf("delete %s -> deleted %t\n", key, res.GetDeleted())
	return nil
}

func clearPrefix(kv kvv1.KeyValueServiceClient, prefix string) error {
	ctx, cancel := callContext()
	defer cancel()
	res, err := kv.Clear(ctx, &kvv1.ClearRequest{Prefix: prefix})
	if err != nil {
		return fmt.Errorf("clear %s: %w", prefix, err)
	}
	fmt.Printf("clear %s -> deleted_count %d\n", prefix, res.GetDeletedCount())
	return nil
}

// compactJSON prints a value as JSON with sorted object keys, no spaces and
// no HTML escaping, the form every client of the interop test agrees on.
func compactJSON(v *structpb.Value) (string, error) {
	if v == nil {
		return "", errors.New("entry has no value")
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v.AsInterface()); err != nil {
		return "", err
	}
	return strings.TrimSuffix(out.String(), "\n"), nil
}

// first returns a trailer of a failed call: KV_REASON is the "kv-reason"
// trailer (a kv.v1.ErrorTrailer value's name in lower case, "-" for "_").
func first(md metadata.MD, which kvv1.ErrorTrailer) string {
	if values := md.Get(strings.ReplaceAll(strings.ToLower(which.String()), "_", "-")); len(values) > 0 {
		return values[0]
	}
	return "?"
}

func callContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 10*time.Second)
}

func envOr(name, fallback string) string {
	if value := os.Getenv(name); value != "" {
		return value
	}
	return fallback
}

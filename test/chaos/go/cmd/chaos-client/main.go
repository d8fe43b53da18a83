// Command chaos-client is the Go side of the chaos run: -clients concurrent
// clients, each with its own connection, issue Get / Set / compare-and-set /
// Delete on a few keys, one call at a time, and record every call (invocation
// and completion on CLOCK_MONOTONIC, outcome) as JSON lines in -out. Calls
// wait for the server while it is down (WaitForReady), so they can land on
// the next server instance. It prints "ready <clock ns>" once connected, and
// stops when its standard input closes: no new calls, the ones in flight are
// finished and recorded, exit 0.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	kvv1 "github.com/kv-project/kv/clients/go/gen/kv/v1"
	"github.com/kv-project/kv/test/chaos/go/history"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("chaos-client: ")
	addr := flag.String("addr", "", "server host:port")
	clients := flag.Int("clients", 3, "concurrent clients")
	keys := flag.Int("keys", 4, "keys k0..k(N-1)")
	out := flag.String("out", "", "history file to write (JSON lines)")
	name := flag.String("name", "go", "client name prefix")
	seed := flag.Uint64("seed", 1, "random seed")
	deadline := flag.Duration("deadline", 5*time.Second, "deadline of each call")
	flag.Parse()
	if *addr == "" || *out == "" {
		log.Fatal("-addr and -out are required")
	}
	f, err := os.Create(*out)
	if err != nil {
		log.Fatal(err)
	}
	rec := &recorder{w: bufio.NewWriter(f)}

	var stopping atomic.Bool
	var wg sync.WaitGroup
	conns := make([]*grpc.ClientConn, *clients)
	for i := range conns {
		conn, err := grpc.NewClient(*addr,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			// The server comes back within a second or two of each kill: reconnect quickly, never back off for long.
			grpc.WithConnectParams(grpc.ConnectParams{
				Backoff:           backoff.Config{BaseDelay: 20 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 200 * time.Millisecond},
				MinConnectTimeout: time.Second,
			}),
			grpc.WithDefaultCallOptions(grpc.WaitForReady(true)))
		if err != nil {
			log.Fatal(err)
		}
		conns[i] = conn
	}
	fmt.Printf("ready %d\n", history.Now())
	for i, conn := range conns {
		c := &client{
			name:     fmt.Sprintf("%s-%d", *name, i),
			kv:       kvv1.NewKeyValueServiceClient(conn),
			keys:     *keys,
			rng:      rand.New(rand.NewPCG(*seed, uint64(i))),
			deadline: *deadline,
			known:    map[string]int64{},
			rec:      rec,
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stopping.Load() {
				c.one()
			}
		}()
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	stopping.Store(true)
	wg.Wait()
	for _, conn := range conns {
		conn.Close()
	}
	if err := rec.close(f); err != nil {
		log.Fatal(err)
	}
}

type recorder struct {
	mu  sync.Mutex
	w   *bufio.Writer
	err error
}

func (r *recorder) add(rec history.Record) {
	line, err := json.Marshal(rec)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		_, err = r.w.Write(append(line, '\n'))
	}
	if err != nil && r.err == nil {
		r.err = err
	}
}

func (r *recorder) close(f *os.File) error {
	if r.err != nil {
		return r.err
	}
	if err := r.w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

type client struct {
	name     string
	kv       kvv1.KeyValueServiceClient
	keys     int
	rng      *rand.Rand
	deadline time.Duration
	seq      int
	// The last mod_revision this client saw per key (0: absent), for compare-and-set.
	known map[string]int64
	rec   *recorder
}

// one issues one call and records it. The mix: 40% get, 15% set, 20%
// compare-and-set (mostly with the revision last seen, sometimes 0 or a
// stale one), 10% txn (the same compare, then set, else get), 15% delete
// (half of them conditional).
func (c *client) one() {
	key := fmt.Sprintf("k%d", c.rng.IntN(c.keys))
	c.seq++
	value := fmt.Sprintf("%s:%d", c.name, c.seq)
	r := history.Record{Client: c.name, Key: key}
	var expected *int64
	if p := c.rng.Float64(); p < 0.4 {
		r.Op = history.OpGet
	} else if p < 0.75 {
		r.Op, r.Value = history.OpSet, &value
		if p >= 0.55 {
			expected = c.expectation(key)
		}
	} else if p < 0.85 {
		r.Op, r.Value, expected = history.OpTxn, &value, c.expectation(key)
	} else {
		r.Op = history.OpDelete
		if c.rng.IntN(2) == 0 {
			expected = c.expectation(key)
		}
	}
	r.Expected = expected

	ctx, cancel := context.WithTimeout(context.Background(), c.deadline)
	defer cancel()
	var trailer metadata.MD
	var err error
	r.Call = history.Now()
	switch r.Op {
	case history.OpGet:
		var res *kvv1.GetResponse
		res, err = c.kv.Get(ctx, &kvv1.GetRequest{Key: key})
		r.Return = history.Now()
		if err == nil {
			found, ferr := res.GetEntry().GetValue().MarshalJSON()
			if ferr != nil {
				log.Fatal(ferr)
			}
			s := decodeString(found)
			r.Status, r.Found, r.ModRevision = history.StatusOK, &s, res.GetEntry().GetModRevision()
			c.known[key] = r.ModRevision
		}
	case history.OpSet:
		var res *kvv1.SetResponse
		res, err = c.kv.Set(ctx, &kvv1.SetRequest{Key: key, Value: structpb.NewStringValue(value), ExpectedRevision: expected}, grpc.Trailer(&trailer))
		r.Return = history.Now()
		if err == nil {
			r.Status, r.Revision = history.StatusOK, res.GetRevision()
			c.known[key] = r.Revision
		}
	case history.OpTxn:
		var res *kvv1.TxnResponse
		res, err = c.kv.Txn(ctx, &kvv1.TxnRequest{
			Compare: []*kvv1.Compare{{Result: kvv1.Compare_COMPARE_RESULT_EQUAL, Key: key, TargetUnion: &kvv1.Compare_ModRevision{ModRevision: *expected}}},
			Success: []*kvv1.RequestOp{{Request: &kvv1.RequestOp_Set{Set: &kvv1.SetRequest{Key: key, Value: structpb.NewStringValue(value)}}}},
			Failure: []*kvv1.RequestOp{{Request: &kvv1.RequestOp_Get{Get: &kvv1.GetRequest{Key: key}}}},
		})
		r.Return = history.Now()
		if err == nil {
			succeeded := res.GetSucceeded()
			r.Status, r.Succeeded, r.Revision = history.StatusOK, &succeeded, res.GetRevision()
			c.known[key] = res.GetRevision()
			if !succeeded {
				c.known[key] = 0
				if entry := res.GetResponses()[0].GetGet().GetEntry(); entry != nil {
					found, ferr := entry.GetValue().MarshalJSON()
					if ferr != nil {
						log.Fatal(ferr)
					}
					s := decodeString(found)
					r.Found, r.ModRevision = &s, entry.GetModRevision()
					c.known[key] = r.ModRevision
				}
			}
		}
	case history.OpDelete:
		var res *kvv1.DeleteResponse
		res, err = c.kv.Delete(ctx, &kvv1.DeleteRequest{Key: key, ExpectedRevision: expected}, grpc.Trailer(&trailer))
		r.Return = history.Now()
		if err == nil {
			deleted := res.GetDeleted()
			r.Status, r.Deleted, r.Revision = history.StatusOK, &deleted, res.GetRevision()
			c.known[key] = 0
		}
	}
	if err != nil {
		c.classify(&r, err, trailer)
	}
	c.rec.add(r)
	if r.Status == history.StatusIndefinite {
		time.Sleep(20 * time.Millisecond) // do not spin on a server that is down
	}
}

// expectation: usually the revision last seen, sometimes 0 (create only) or
// one too old, so that compares both win and lose.
func (c *client) expectation(key string) *int64 {
	e := c.known[key]
	switch p := c.rng.Float64(); {
	case p < 0.1:
		e = 0
	case p < 0.2 && e > 1:
		e--
	}
	return &e
}

// classify sorts an error into a definite outcome (the call did not change
// anything and says why) or an indefinite one (it may have been applied).
func (c *client) classify(r *history.Record, err error, trailer metadata.MD) {
	st, _ := status.FromError(err)
	switch {
	case r.Op == history.OpGet && st.Code() == codes.NotFound:
		r.Status = history.StatusNotFound
		c.known[r.Key] = 0
	case st.Code() == codes.Aborted:
		current := currentRevision(trailer)
		if current == nil {
			log.Fatalf("%s %s %q: ABORTED without kv-current-revision: %v", c.name, r.Op, r.Key, err)
		}
		r.Status, r.CurrentRevision = history.StatusAborted, current
		c.known[r.Key] = *current
	default:
		r.Status, r.Error = history.StatusIndefinite, st.Code().String()+": "+st.Message()
		if errors.Is(err, context.DeadlineExceeded) {
			r.Error = "DeadlineExceeded: " + err.Error()
		}
	}
}

func currentRevision(md metadata.MD) *int64 {
	v := md.Get("kv-current-revision")
	if len(v) != 1 {
		return nil
	}
	n, err := strconv.ParseInt(v[0], 10, 64)
	if err != nil {
		return nil
	}
	return &n
}

// decodeString: every value this run writes is a JSON string; anything else
// is kept as its JSON text, which no write produced, so the checker rejects it.
func decodeString(j []byte) string {
	var s string
	if json.Unmarshal(j, &s) == nil {
		return s
	}
	return string(j)
}

// Package history is the on-disk form of a chaos run: what every client did
// and when the server was started and killed. Clients in any language write
// the same JSON lines; see docs/operations.md ("Reading a kept history").
//
// Times are nanoseconds of CLOCK_MONOTONIC, one clock for every process on
// the machine (Node's process.hrtime.bigint() reads the same clock), so
// intervals recorded by different processes can be compared.
package history

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Op kinds. A compare-and-set is a set with Expected; a conditional delete,
// a delete with Expected. A txn is a Txn on one key: if its mod_revision is
// Expected (0: absent), set it to Value, else get it.
//
// Extension point: a Txn over several keys would need its compares and
// operations in their own fields, and check.Partition to group every key a
// txn touches into one partition.
const (
	OpGet    = "get"
	OpSet    = "set"
	OpDelete = "delete"
	OpTxn    = "txn"
)

// Statuses. Indefinite: no answer that says whether a write happened
// (UNAVAILABLE, DEADLINE_EXCEEDED, the connection died with the server...).
const (
	StatusOK         = "ok"
	StatusNotFound   = "not_found"
	StatusAborted    = "aborted"
	StatusIndefinite = "indefinite"
)

// Record is one call of one client: one JSON line.
type Record struct {
	Client   string  `json:"client"`
	Op       string  `json:"op"`
	Key      string  `json:"key"`
	Value    *string `json:"value,omitempty"`    // set, txn: the value written
	Expected *int64  `json:"expected,omitempty"` // set, delete, txn: the mod_revision the key must have (0: absent)
	Call     int64   `json:"call"`               // before the request was sent
	Return   int64   `json:"return"`             // after the answer (or the error) arrived
	Status   string  `json:"status"`

	// Outcome, by op and status.
	Found           *string `json:"found,omitempty"`            // get ok, txn ok not succeeded: the value read (txn: absent if the key was)
	ModRevision     int64   `json:"mod_revision,omitempty"`     // get ok, txn ok not succeeded with a value found
	Revision        int64   `json:"revision,omitempty"`         // set ok: the write's revision; delete ok: the delete's (deleted) or the store's (not deleted); txn ok: the txn's (succeeded) or the store's it read at; 0 if the client cannot tell
	Succeeded       *bool   `json:"succeeded,omitempty"`        // txn ok: whether the compare held (the set ran) or not (the get ran)
	Deleted         *bool   `json:"deleted,omitempty"`          // delete ok
	CurrentRevision *int64  `json:"current_revision,omitempty"` // aborted: the key's mod_revision the server compared with
	Error           string  `json:"error,omitempty"`            // indefinite: the error as the client saw it
}

// ServerEvent is one line of server.jsonl, written by the harness.
type ServerEvent struct {
	Event string `json:"event"` // "spawn", "ready", "kill" (SIGKILL), "stop" (SIGTERM at the end)
	Pid   int    `json:"pid"`
	At    int64  `json:"at"` // spawn: read before spawn(); ready: after its "listening" line; kill, stop: after its exit was seen
}

// Instance is one life of the server process: it may have received requests
// from Spawn on and applied nothing after Death.
type Instance struct {
	Pid   int
	Spawn int64
	Death int64 // 0 while it was never seen to die
}

// History is one chaos run.
type History struct {
	Records   []Record
	Instances []Instance
	Kills     int
}

// ServerEventsFile is the harness's file in a history directory; every other
// *.jsonl file there is one client process's records.
const ServerEventsFile = "server.jsonl"

// ReadDir reads a history directory.
func ReadDir(dir string) (*History, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	h := &History{}
	sawServer := false
	for _, name := range names {
		if filepath.Base(name) == ServerEventsFile {
			sawServer = true
			if err := readLines(name, func(line []byte) error {
				var e ServerEvent
				if err := json.Unmarshal(line, &e); err != nil {
					return err
				}
				return h.addServerEvent(e)
			}); err != nil {
				return nil, err
			}
			continue
		}
		if err := readLines(name, func(line []byte) error {
			var r Record
			if err := json.Unmarshal(line, &r); err != nil {
				return err
			}
			if err := r.validate(); err != nil {
				return err
			}
			h.Records = append(h.Records, r)
			return nil
		}); err != nil {
			return nil, err
		}
	}
	if !sawServer {
		return nil, fmt.Errorf("%s: no %s (the harness's record of server starts and kills)", dir, ServerEventsFile)
	}
	return h, nil
}

func (h *History) addServerEvent(e ServerEvent) error {
	switch e.Event {
	case "spawn":
		if n := len(h.Instances); n > 0 && h.Instances[n-1].Death == 0 {
			return fmt.Errorf("spawn of pid %d while pid %d was not seen to die", e.Pid, h.Instances[n-1].Pid)
		}
		h.Instances = append(h.Instances, Instance{Pid: e.Pid, Spawn: e.At})
	case "ready":
	case "kill", "stop":
		if len(h.Instances) == 0 || h.Instances[len(h.Instances)-1].Pid != e.Pid || h.Instances[len(h.Instances)-1].Death != 0 {
			return fmt.Errorf("%s of pid %d with no live instance", e.Event, e.Pid)
		}
		h.Instances[len(h.Instances)-1].Death = e.At
		if e.Event == "kill" {
			h.Kills++
		}
	default:
		return fmt.Errorf("unknown server event %q", e.Event)
	}
	return nil
}

func (r *Record) validate() error {
	if r.Return < r.Call {
		return fmt.Errorf("%s %s %q returns (%d) before it was called (%d)", r.Client, r.Op, r.Key, r.Return, r.Call)
	}
	switch r.Op {
	case OpGet, OpDelete:
	case OpSet:
		if r.Value == nil {
			return fmt.Errorf("%s set %q without a value", r.Client, r.Key)
		}
	case OpTxn:
		if r.Value == nil || r.Expected == nil {
			return fmt.Errorf("%s txn %q without a value or an expected revision", r.Client, r.Key)
		}
	default:
		return fmt.Errorf("%s: unknown op %q", r.Client, r.Op)
	}
	switch r.Status {
	case StatusOK:
		if r.Op == OpGet && r.Found == nil {
			return fmt.Errorf("%s get %q ok without the value found", r.Client, r.Key)
		}
		if r.Op == OpDelete && r.Deleted == nil {
			return fmt.Errorf("%s delete %q ok without deleted", r.Client, r.Key)
		}
		if r.Op == OpTxn && r.Succeeded == nil {
			return fmt.Errorf("%s txn %q ok without succeeded", r.Client, r.Key)
		}
	case StatusNotFound, StatusIndefinite:
	case StatusAborted:
		if r.CurrentRevision == nil {
			return fmt.Errorf("%s %s %q aborted without the current revision", r.Client, r.Op, r.Key)
		}
	default:
		return fmt.Errorf("%s %s %q: unknown status %q", r.Client, r.Op, r.Key, r.Status)
	}
	return nil
}

func readLines(name string, each func([]byte) error) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; s.Scan(); n++ {
		line := s.Bytes()
		if len(strings.TrimSpace(string(line))) == 0 {
			continue
		}
		if err := each(line); err != nil {
			return fmt.Errorf("%s:%d: %w", name, n, err)
		}
	}
	return s.Err()
}

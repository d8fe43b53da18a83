// Command chaos-check checks one chaos history directory for linearizability
// (porcupine, per-key registers with mod_revisions) and store-wide revision
// order, and prints one JSON summary line. Exit 0: linearizable; 1: not
// linearizable or revisions out of order (an HTML visualization of the
// failing partitions is written into the directory); 2: the check timed out;
// 3: the history could not be read.
//
//	chaos-check -dir HISTORY_DIR [-timeout 5m]
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/kv-project/kv/test/chaos/go/check"
	"github.com/kv-project/kv/test/chaos/go/history"
)

type summary struct {
	Dir           string         `json:"dir"`
	Result        string         `json:"result"` // Ok, Illegal, Unknown (timed out)
	Linearizable  bool           `json:"linearizable"`
	Records       int            `json:"records"`
	Operations    int            `json:"operations"` // given to porcupine
	ByStatus      map[string]int `json:"by_status"`
	Indefinite    int            `json:"indefinite_writes"`
	DroppedReads  int            `json:"dropped_reads"`
	DroppedWrites int            `json:"dropped_writes"`
	Clients       int            `json:"clients"`
	Keys          int            `json:"keys"`
	Kills         int            `json:"kills"`
	RevisionIssue []string       `json:"revision_violations"`
	CheckMs       float64        `json:"check_ms"`
	Visualization string         `json:"visualization,omitempty"`
}

func main() {
	dir := flag.String("dir", "", "history directory (client *.jsonl files and server.jsonl)")
	timeout := flag.Duration("timeout", 5*time.Minute, "give up (exit 2) after this long")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "chaos-check: -dir is required")
		os.Exit(3)
	}
	h, err := history.ReadDir(*dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "chaos-check: %v\n", err)
		os.Exit(3)
	}
	started := time.Now()
	prepared, err := check.Prepare(h)
	if err != nil {
		fmt.Fprintf(os.Stderr, "chaos-check: %v\n", err)
		os.Exit(3)
	}
	result, info := porcupine.CheckOperationsVerbose(check.Model, prepared.Ops, *timeout)
	revisionIssues := check.Revisions(h.Records, 20)
	elapsed := time.Since(started)

	s := summary{
		Dir:           *dir,
		Result:        string(result),
		Linearizable:  result == porcupine.Ok && len(revisionIssues) == 0,
		Records:       len(h.Records),
		Operations:    len(prepared.Ops),
		ByStatus:      map[string]int{},
		Indefinite:    prepared.Indefinite,
		DroppedReads:  prepared.DroppedReads,
		DroppedWrites: prepared.DroppedWrites,
		Clients:       len(prepared.Clients),
		Kills:         h.Kills,
		RevisionIssue: revisionIssues,
		CheckMs:       float64(elapsed.Microseconds()) / 1000,
	}
	keys := map[string]bool{}
	for _, r := range h.Records {
		s.ByStatus[r.Op+" "+r.Status]++
		keys[r.Key] = true
	}
	s.Keys = len(keys)
	if result == porcupine.Illegal {
		s.Visualization = filepath.Join(*dir, "linearizability.html")
		if err := porcupine.VisualizePath(check.Model, info, s.Visualization); err != nil {
			fmt.Fprintf(os.Stderr, "chaos-check: writing the visualization: %v\n", err)
			s.Visualization = ""
		}
	}
	line, _ := json.Marshal(s)
	fmt.Println(string(line))
	switch {
	case result == porcupine.Unknown:
		os.Exit(2)
	case !s.Linearizable:
		os.Exit(1)
	}
}

package check

import (
	"fmt"
	"math"
	"sort"

	"github.com/anishathalye/porcupine"

	"github.com/kv-project/kv/test/chaos/go/history"
)

// Prepared is a history as porcupine operations, with what was left out.
type Prepared struct {
	Ops []porcupine.Operation
	// Reads that got no answer: they tell nothing.
	DroppedReads int
	// Writes that got no answer while no server instance lived: never applied.
	DroppedWrites int
	// Writes that got no answer and may have been applied.
	Indefinite int
	Clients    []string
}

// Prepare turns records into porcupine operations.
//
// A write that got no answer may have been applied, at any moment from its
// call until the death of the last server instance spawned before the client
// gave up on it (no later instance can have received it; a live one could
// still apply it, so if that instance never died the write stays open to the
// end of the history). If that instance died before the call, nothing can
// have received it: it is left out.
func Prepare(h *history.History) (*Prepared, error) {
	p := &Prepared{}
	clientIDs := map[string]int{}
	for _, r := range h.Records {
		if _, ok := clientIDs[r.Client]; !ok {
			clientIDs[r.Client] = len(p.Clients)
			p.Clients = append(p.Clients, r.Client)
		}
		in := input{op: r.Op, key: r.Key}
		if r.Value != nil {
			in.value = *r.Value
		}
		if r.Expected != nil {
			in.expected, in.hasExpected = *r.Expected, true
		}
		out := output{status: r.Status, modRev: r.ModRevision, revision: r.Revision}
		if r.Found != nil {
			out.found, out.present = *r.Found, true
		}
		if r.Succeeded != nil {
			out.succeeded = *r.Succeeded
		}
		if r.Deleted != nil {
			out.deleted = *r.Deleted
		}
		if r.CurrentRevision != nil {
			out.current = *r.CurrentRevision
		}
		ret := r.Return
		if r.Status == history.StatusIndefinite {
			if r.Op == history.OpGet {
				p.DroppedReads++
				continue
			}
			bound, ok := applyBound(h.Instances, r)
			if !ok {
				p.DroppedWrites++
				continue
			}
			p.Indefinite++
			ret = bound
		}
		if r.Status == history.StatusNotFound && r.Op != history.OpGet {
			return nil, fmt.Errorf("%s %s %q: not_found is only an outcome of get", r.Client, r.Op, r.Key)
		}
		p.Ops = append(p.Ops, porcupine.Operation{
			ClientId: clientIDs[r.Client],
			Input:    in,
			Call:     r.Call,
			Output:   out,
			Return:   ret,
			Metadata: describeRecord(r),
		})
	}
	return p, nil
}

// applyBound is the latest time an unanswered write r can have been applied,
// and false if it cannot have been applied at all.
func applyBound(instances []history.Instance, r history.Record) (int64, bool) {
	i := sort.Search(len(instances), func(i int) bool { return instances[i].Spawn > r.Return }) - 1
	if i < 0 {
		return 0, false
	}
	death := instances[i].Death
	if death == 0 {
		return math.MaxInt64, true
	}
	if death < r.Call {
		return 0, false
	}
	return death, true
}

func describeRecord(r history.Record) string {
	s := fmt.Sprintf("%s, %.3f ms", r.Client, float64(r.Return-r.Call)/1e6)
	if r.Error != "" {
		s += ": " + r.Error
	}
	return s
}

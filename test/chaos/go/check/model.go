// Package check decides whether a chaos history is linearizable: porcupine
// (the checker etcd's robustness tests use) against a per-key register model
// with mod_revisions, plus a separate check that store-wide revisions respect
// real time (revisions.go).
package check

import (
	"fmt"
	"hash/fnv"

	"github.com/anishathalye/porcupine"

	"github.com/kv-project/kv/test/chaos/go/history"
)

// unknownRevision: the key holds a value written by a call that got no answer,
// so its mod_revision was never seen; the first read of it pins it.
const unknownRevision = -1

// register is the state of one key.
type register struct {
	exists bool
	value  string
	modRev int64 // unknownRevision, or the key's mod_revision; 0 when !exists
}

// input and output of one operation, as the model sees them.
type input struct {
	op          string
	key         string
	value       string
	expected    int64
	hasExpected bool
}

type output struct {
	status    string // history.Status*
	found     string // get ok; txn ok not succeeded, if present
	present   bool   // txn ok not succeeded: the key existed
	modRev    int64  // get ok; txn ok not succeeded, if present
	revision  int64  // set ok, txn ok succeeded
	deleted   bool   // delete ok
	succeeded bool   // txn ok
	current   int64  // aborted
}

// compare says whether "mod_revision == expected" holds for r: yes, no, or
// maybe (the key holds a value of unknown revision).
type tri int

const (
	no tri = iota
	maybe
	yes
)

func (r register) compare(in input) tri {
	switch {
	case !in.hasExpected:
		return yes
	case !r.exists:
		return boolTri(in.expected == 0)
	case in.expected == 0:
		return no // an existing key's mod_revision is never 0
	case r.modRev == unknownRevision:
		return maybe
	default:
		return boolTri(r.modRev == in.expected)
	}
}

func boolTri(b bool) tri {
	if b {
		return yes
	}
	return no
}

// step is the register's sequential specification: the states the key may be
// in after the operation, none if the operation cannot have had that output.
// An indefinite write (no answer) forks: it happened, or it did not.
func step(state, in, out interface{}) []interface{} {
	r, i, o := state.(register), in.(input), out.(output)
	switch i.op {
	case history.OpGet:
		if o.status == history.StatusNotFound {
			return when(!r.exists, r)
		}
		if !r.exists || r.value != o.found || (r.modRev != unknownRevision && r.modRev != o.modRev) {
			return nil
		}
		return []interface{}{register{exists: true, value: r.value, modRev: o.modRev}}
	case history.OpSet:
		cmp := r.compare(i)
		switch o.status {
		case history.StatusOK:
			return when(cmp != no, register{exists: true, value: i.value, modRev: o.revision})
		case history.StatusAborted:
			return aborted(r, cmp, o.current)
		default: // indefinite
			states := []interface{}{r}
			if cmp != no {
				states = append(states, register{exists: true, value: i.value, modRev: unknownRevision})
			}
			return states
		}
	case history.OpDelete:
		cmp := r.compare(i)
		switch o.status {
		case history.StatusOK:
			if o.deleted {
				return when(r.exists && cmp != no, register{})
			}
			// A missing key: not deleted, no error, unless a revision other than 0 was expected (then ABORTED).
			return when(!r.exists && cmp == yes, r)
		case history.StatusAborted:
			return aborted(r, cmp, o.current)
		default:
			states := []interface{}{r}
			if r.exists && cmp != no {
				states = append(states, register{})
			}
			return states
		}
	case history.OpTxn:
		cmp := r.compare(i)
		switch {
		case o.status == history.StatusOK && o.succeeded:
			return when(cmp != no, register{exists: true, value: i.value, modRev: o.revision})
		case o.status == history.StatusOK:
			// The compare failed, and the get of the failure branch read the key.
			if cmp == yes {
				return nil
			}
			if !o.present {
				return when(!r.exists, r)
			}
			if !r.exists || r.value != o.found || (r.modRev != unknownRevision && r.modRev != o.modRev) || o.modRev == i.expected {
				return nil
			}
			return []interface{}{register{exists: true, value: r.value, modRev: o.modRev}}
		default: // indefinite (a Txn never answers ABORTED: a failed compare is its failure branch)
			states := []interface{}{r}
			if cmp != no {
				states = append(states, register{exists: true, value: i.value, modRev: unknownRevision})
			}
			return states
		}
	}
	// Extension point: a Txn over several keys evaluates its compares against
	// the registers of its partition (state would become a map key -> register)
	// and applies its success or failure ops with one revision.
	panic(fmt.Sprintf("no model for op %q", i.op))
}

// aborted: a compare that failed must have been false, and the server names
// the key's mod_revision it compared with (0 if absent).
func aborted(r register, cmp tri, current int64) []interface{} {
	if cmp == yes {
		return nil
	}
	switch {
	case !r.exists:
		return when(current == 0, r)
	case r.modRev == unknownRevision:
		return when(current > 0, register{exists: true, value: r.value, modRev: current})
	default:
		return when(current == r.modRev, r)
	}
}

func when(ok bool, r register) []interface{} {
	if !ok {
		return nil
	}
	return []interface{}{r}
}

// Model is the porcupine model: per-key registers, one partition per key.
var Model = (&porcupine.NondeterministicModel{
	Partition: partitionByKey,
	Init:      func() []interface{} { return []interface{}{register{}} },
	Step:      step,
	Equal:     func(a, b interface{}) bool { return a.(register) == b.(register) },
	Hash: func(s interface{}) uint64 {
		r := s.(register)
		h := fnv.New64a()
		fmt.Fprintf(h, "%t\x00%s\x00%d", r.exists, r.value, r.modRev)
		return h.Sum64()
	},
	DescribeOperation: describeOperation,
	DescribeState: func(s interface{}) string {
		r := s.(register)
		switch {
		case !r.exists:
			return "absent"
		case r.modRev == unknownRevision:
			return fmt.Sprintf("%q@?", r.value)
		default:
			return fmt.Sprintf("%q@%d", r.value, r.modRev)
		}
	},
	DescribeOperationMetadata: func(m interface{}) string {
		if m == nil {
			return ""
		}
		return m.(string)
	},
}).ToModel()

// partitionByKey: keys are independent registers, so a history is
// linearizable if each key's sub-history is (P-compositionality). Store-wide
// revisions tie keys together; revisions.go checks those on their own.
//
// Extension point: a Txn touches several keys; its keys must then share one
// partition (union the keys of every txn, then group by component).
func partitionByKey(ops []porcupine.Operation) [][]porcupine.Operation {
	byKey := map[string][]porcupine.Operation{}
	var order []string
	for _, op := range ops {
		k := op.Input.(input).key
		if _, seen := byKey[k]; !seen {
			order = append(order, k)
		}
		byKey[k] = append(byKey[k], op)
	}
	parts := make([][]porcupine.Operation, 0, len(order))
	for _, k := range order {
		parts = append(parts, byKey[k])
	}
	return parts
}

func describeOperation(in, out interface{}) string {
	i, o := in.(input), out.(output)
	call := fmt.Sprintf("%s(%s)", i.op, i.key)
	if i.op == history.OpSet {
		call = fmt.Sprintf("set(%s, %q)", i.key, i.value)
	}
	if i.op == history.OpTxn {
		call = fmt.Sprintf("txn(if rev(%s)=%d then set %q else get)", i.key, i.expected, i.value)
	}
	if i.hasExpected && i.op != history.OpTxn {
		call = fmt.Sprintf("%s if rev=%d", call, i.expected)
	}
	switch o.status {
	case history.StatusOK:
		switch i.op {
		case history.OpGet:
			return fmt.Sprintf("%s -> %q@%d", call, o.found, o.modRev)
		case history.OpSet:
			return fmt.Sprintf("%s -> rev %d", call, o.revision)
		case history.OpTxn:
			switch {
			case o.succeeded:
				return fmt.Sprintf("%s -> set, rev %d", call, o.revision)
			case o.present:
				return fmt.Sprintf("%s -> got %q@%d", call, o.found, o.modRev)
			default:
				return call + " -> got nothing"
			}
		default:
			return fmt.Sprintf("%s -> deleted=%t", call, o.deleted)
		}
	case history.StatusNotFound:
		return call + " -> not found"
	case history.StatusAborted:
		return fmt.Sprintf("%s -> aborted (current %d)", call, o.current)
	default:
		return call + " -> ? (no answer)"
	}
}

package check

import (
	"fmt"
	"sort"

	"github.com/kv-project/kv/test/chaos/go/history"
)

// Revisions checks what the per-key partitions cannot see: that the one
// store-wide revision counter moves forward in real time, across restarts.
//
//   - every acknowledged change has its own revision (a txn here writes one
//     key, so one change per revision still holds);
//   - a change invoked after an operation completed gets a revision above
//     every revision that operation saw (its own write's, a read's
//     mod_revision, an ABORTED's current revision);
//   - an answer that reports the store's current revision (a delete of a
//     missing key, a txn whose compare failed) is at least the revision of
//     every change completed before it was invoked.
//
// It returns one line per violation (at most max).
func Revisions(records []history.Record, max int) []string {
	type seen struct {
		rev int64
		r   *history.Record
	}
	var writes, observed, current []seen
	for i := range records {
		r := &records[i]
		switch {
		case r.Status == history.StatusOK && r.Op == history.OpSet:
			writes = append(writes, seen{r.Revision, r})
			observed = append(observed, seen{r.Revision, r})
		case r.Status == history.StatusOK && r.Op == history.OpDelete && *r.Deleted && r.Revision > 0:
			writes = append(writes, seen{r.Revision, r})
			observed = append(observed, seen{r.Revision, r})
		case r.Status == history.StatusOK && r.Op == history.OpDelete && !*r.Deleted && r.Revision > 0:
			current = append(current, seen{r.Revision, r})
			observed = append(observed, seen{r.Revision, r})
		case r.Status == history.StatusOK && r.Op == history.OpTxn && *r.Succeeded:
			writes = append(writes, seen{r.Revision, r})
			observed = append(observed, seen{r.Revision, r})
		case r.Status == history.StatusOK && r.Op == history.OpTxn:
			current = append(current, seen{r.Revision, r})
			observed = append(observed, seen{r.Revision, r})
		case r.Status == history.StatusOK && r.Op == history.OpGet:
			observed = append(observed, seen{r.ModRevision, r})
		case r.Status == history.StatusAborted:
			observed = append(observed, seen{*r.CurrentRevision, r})
		}
	}
	var violations []string
	report := func(format string, args ...interface{}) {
		if len(violations) < max {
			violations = append(violations, fmt.Sprintf(format, args...))
		}
	}

	byRevision := map[int64]*history.Record{}
	for _, w := range writes {
		if other, dup := byRevision[w.rev]; dup {
			report("revision %d given to two changes: %s and %s", w.rev, describe(other), describe(w.r))
		}
		byRevision[w.rev] = w.r
	}

	byReturn := func(s []seen) []seen {
		out := append([]seen(nil), s...)
		sort.Slice(out, func(i, j int) bool { return out[i].r.Return < out[j].r.Return })
		return out
	}
	byCall := func(s []seen) []seen {
		out := append([]seen(nil), s...)
		sort.Slice(out, func(i, j int) bool { return out[i].r.Call < out[j].r.Call })
		return out
	}

	// Sweep the later operations in call order, keeping the highest revision
	// among operations that completed before each call.
	before := byReturn(observed)
	var best *seen
	j := 0
	for _, w := range byCall(writes) {
		for ; j < len(before) && before[j].r.Return < w.r.Call; j++ {
			if best == nil || before[j].rev > best.rev {
				best = &before[j]
			}
		}
		if best != nil && best.rev >= w.rev {
			report("revision went back: %s saw revision %d and completed before %s was called, which got revision %d",
				describe(best.r), best.rev, describe(w.r), w.rev)
		}
	}
	changes := byReturn(writes)
	best, j = nil, 0
	for _, c := range byCall(current) {
		for ; j < len(changes) && changes[j].r.Return < c.r.Call; j++ {
			if best == nil || changes[j].rev > best.rev {
				best = &changes[j]
			}
		}
		if best != nil && best.rev > c.rev {
			report("store revision went back: %s completed with revision %d before %s was called, which reported the store at revision %d",
				describe(best.r), best.rev, describe(c.r), c.rev)
		}
	}
	return violations
}

func describe(r *history.Record) string {
	what := fmt.Sprintf("%s(%s)", r.Op, r.Key)
	if r.Value != nil {
		what = fmt.Sprintf("%s(%s, %q)", r.Op, r.Key, *r.Value)
	}
	return fmt.Sprintf("%s's %s [%d..%d]", r.Client, what, r.Call, r.Return)
}

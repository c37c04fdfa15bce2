package authz

import (
	"sync"
	"weak"
)

// Interning of claim sets. The table is bounded in sets and in bytes; it
// holds its sets weakly, so a set no cached token uses any more is
// collected and its slot reused.
//
// A full table is swept for collected sets at most once per
// len(table)/2 refused insertions, never on every insertion: with more
// live distinct claim sets than the table holds (per-tenant groups, say),
// a sweep finds nothing to free, and sweeping each time made every new
// token scan 1024 weak pointers under the table's lock (new-token cost
// 22 → 42 µs). A set that is not interned is simply not shared: its entry
// pays for it in the cache's byte budget.
//
// Whether interning pays, measured at the default cache size
// (BenchmarkInterner, on a shared 2-core VM): 100 000 typical tokens take
// 283 B per entry with it and 789 B without (where the byte budget then
// caps the cache below its size), and a new token allocates 9 times
// (1.45 KB) with it, 22 times (1.95 KB) without; its CPU cost differs by
// less than the run-to-run noise. Kept.

const (
	maxInternKey   = 1024    // claim sets with more JSON text are not shared
	maxInterned    = 1024    // sets
	maxInternBytes = 2 << 20 // keys + sets, by claimSet.size
	weakOverhead   = 64      // the weak pointer's bookkeeping, per set
)

type interner struct {
	mu    sync.RWMutex
	m     map[string]internedSet
	bytes int
	// refused counts insertions refused since the last sweep.
	refused int
	sweeps  int // for tests
}

type internedSet struct {
	p    weak.Pointer[claimSet]
	size int
}

func newInterner() *interner { return &interner{m: map[string]internedSet{}} }

func (in *interner) get(key []byte) *claimSet {
	in.mu.RLock()
	s, ok := in.m[string(key)]
	in.mu.RUnlock()
	if !ok {
		return nil
	}
	return s.p.Value()
}

// put interns cs under key and reports whether it did.
func (in *interner) put(key []byte, cs *claimSet) bool {
	size := len(key) + int(cs.size) + weakOverhead
	in.mu.Lock()
	defer in.mu.Unlock()
	if old, ok := in.m[string(key)]; ok {
		in.bytes -= old.size
		delete(in.m, string(key))
	}
	if len(in.m) >= maxInterned || in.bytes+size > maxInternBytes {
		if in.refused < len(in.m)/2 {
			in.refused++
			return false
		}
		in.refused = 0
		in.sweeps++
		for k, s := range in.m {
			if s.p.Value() == nil {
				delete(in.m, k)
				in.bytes -= s.size
			}
		}
		if len(in.m) >= maxInterned || in.bytes+size > maxInternBytes {
			return false
		}
	}
	in.m[string(key)] = internedSet{p: weak.Make(cs), size: size}
	in.bytes += size
	return true
}

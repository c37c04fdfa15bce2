package caddymodule

import (
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// TestDenyBudget: from many goroutines at once (handlers of many routes),
// at most perSecond denial lines pass per second, the others are counted
// and reported in one line per period, and the budget resets each second.
func TestDenyBudget(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	b := newDenyBudget(20, time.Hour, zap.New(core)) // reports on demand below
	now := time.Unix(1_800_000_000, 0)
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				if b.allow(now) {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if allowed != 20 {
		t.Fatalf("%d of 5000 denial lines allowed in one second, want the budget of 20", allowed)
	}
	if !b.allow(now.Add(time.Second)) {
		t.Fatal("the budget did not reset in the next second")
	}
	if err := b.Destruct(); err != nil { // flushes the count
		t.Fatal(err)
	}
	entries := logs.FilterMessage("denials suppressed from the log").All()
	if len(entries) != 1 || entries[0].ContextMap()["suppressed"] != int64(4980) {
		t.Fatalf("suppressed report: %+v, want one line counting 4980", entries)
	}
}

func TestTruncate(t *testing.T) {
	if s := truncate("short"); s != "short" {
		t.Fatal(s)
	}
	long := strings.Repeat("é", 400) // 2 bytes each: the cut must not split one
	s := truncate(long)
	if len(s) > denyLogFieldBytes || !strings.HasSuffix(s, "…") || !strings.HasPrefix(long, strings.TrimSuffix(s, "…")) {
		t.Fatalf("truncated to %d bytes: %q", len(s), s)
	}
}

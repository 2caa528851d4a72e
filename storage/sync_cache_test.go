package storage

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/rooms"
)

// TestTimelineCacheSharesOneRead: concurrent reads of one range make one
// load; another range, a failed load and an expired entry load again; a
// caller's slice is its own.
func TestTimelineCacheSharesOneRead(t *testing.T) {
	var c timelineCache
	var loads atomic.Int64
	gate := make(chan struct{})
	ev := &rooms.StoredEvent{Seq: 7}
	load := func(context.Context) ([]*rooms.StoredEvent, bool, error) {
		loads.Add(1)
		<-gate
		return []*rooms.StoredEvent{ev}, true, nil
	}
	k := rangeKey{room: "!r:x", after: 1, upTo: 2, limit: 10}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			evs, limited, err := c.get(context.Background(), k, load)
			if err != nil || !limited || len(evs) != 1 || evs[0] != ev {
				t.Errorf("got %v %v %v", evs, limited, err)
			}
		})
	}
	for deadline := time.Now().Add(10 * time.Second); loads.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no load started")
		}
	}
	close(gate)
	wg.Wait()
	if n := loads.Load(); n != 1 {
		t.Errorf("%d loads for 20 concurrent reads of one range, want 1", n)
	}

	// The slice is the caller's: appending to it does not show elsewhere.
	a, _, _ := c.get(context.Background(), k, load)
	_ = append(a[:0], &rooms.StoredEvent{Seq: 99})
	if b, _, _ := c.get(context.Background(), k, load); b[0] != ev || loads.Load() != 1 {
		t.Errorf("a caller's write reached the cache: %v (loads %d)", b[0], loads.Load())
	}

	// Another range is another read.
	k2 := k
	k2.upTo = 3
	c.get(context.Background(), k2, load)
	if loads.Load() != 2 {
		t.Errorf("loads %d after a second range, want 2", loads.Load())
	}

	// A failed load is not kept.
	boom := errors.New("boom")
	k3 := rangeKey{room: "!other:x"}
	if _, _, err := c.get(context.Background(), k3, func(context.Context) ([]*rooms.StoredEvent, bool, error) { return nil, false, boom }); !errors.Is(err, boom) {
		t.Errorf("error %v, want boom", err)
	}
	if evs, _, err := c.get(context.Background(), k3, load); err != nil || len(evs) != 1 {
		t.Errorf("after a failed load: %v %v, want a new load", evs, err)
	}

	// An entry older than the TTL is read again.
	c.mu.Lock()
	c.m[k].at = time.Now().Add(-timelineTTL)
	c.mu.Unlock()
	before := loads.Load()
	c.get(context.Background(), k, load)
	if loads.Load() != before+1 {
		t.Errorf("an expired range was not read again")
	}
}

// TestTimelineCacheStaysBounded: with as many fresh ranges as it holds,
// the cache reads a further range for its caller without keeping it.
func TestTimelineCacheStaysBounded(t *testing.T) {
	var c timelineCache
	var loads atomic.Int64
	load := func(context.Context) ([]*rooms.StoredEvent, bool, error) {
		loads.Add(1)
		return []*rooms.StoredEvent{{Seq: 1}}, false, nil
	}
	for i := range timelineCacheMax + 10 {
		k := rangeKey{room: "!r:x", after: int64(i), upTo: int64(i + 1), limit: 10}
		evs, _, err := c.get(context.Background(), k, load)
		if err != nil || len(evs) != 1 {
			t.Fatalf("range %d: %v %v", i, evs, err)
		}
	}
	if n := len(c.m); n != timelineCacheMax {
		t.Fatalf("%d ranges kept, want at most %d", n, timelineCacheMax)
	}
	if n := loads.Load(); n != timelineCacheMax+10 {
		t.Fatalf("%d loads, want one per range", n)
	}
	// A range beyond the bound was not kept: reading it again loads again.
	k := rangeKey{room: "!r:x", after: int64(timelineCacheMax + 5), upTo: int64(timelineCacheMax + 6), limit: 10}
	if _, _, err := c.get(context.Background(), k, load); err != nil {
		t.Fatal(err)
	}
	if n := loads.Load(); n != timelineCacheMax+11 {
		t.Fatalf("%d loads after re-reading an uncached range, want %d", n, timelineCacheMax+11)
	}
}

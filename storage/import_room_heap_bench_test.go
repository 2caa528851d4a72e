package storage_test

import (
	"fmt"
	"maps"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/event"
)

// BenchmarkImportRoom10kMembersHeap is BenchmarkImportRoom10kMembers's
// join of a 10,000-member room, measured for memory held rather than
// allocated: the peak of the live heap while the send_join answer is
// imported, above the heap before it (the answer itself, already
// parsed, is in both), sampled every 5 ms (go test ./storage -run '^$'
// -bench ImportRoom10kMembersHeap -benchtime 1x). Issue #7 asks for the
// join's time and memory; B/op counts every allocation, freed or not.
func BenchmarkImportRoom10kMembersHeap(b *testing.B) {
	members := 10000
	if testing.Short() {
		members = 1000
	}
	for range b.N {
		b.StopTimer()
		h := newFedHarness(b)
		roomID, _, st, last := h.remoteRoom("11")
		v := st.Get(auth.TypeCreate, "").Version()
		st = maps.Clone(st)
		for i := range members {
			u := id.NewUserID(fmt.Sprintf("m%d", i), inRemote)
			ev := h.build(inRemote, v, roomID, u, auth.TypeMember, strp(string(u)), `{"membership":"join"}`, []*event.Event{last}, st)
			st[auth.StateKey{Type: auth.TypeMember, StateKey: string(u)}] = ev
			last = ev
		}
		dave := uniqueUser(b, "dave")
		join := h.build(roomServer, v, roomID, dave, auth.TypeMember, strp(string(dave)), `{"membership":"join"}`, []*event.Event{last}, st)
		state := stateList(st)
		chain := h.remote.authChain(append(state, join))

		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		base := ms.HeapAlloc
		peak := base
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			var s runtime.MemStats
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					runtime.ReadMemStats(&s)
					peak = max(peak, s.HeapAlloc)
				}
			}
		}()
		b.StartTimer()
		err := h.in.ImportRoom(h.ctx, v, join, state, chain)
		b.StopTimer()
		close(stop)
		wg.Wait()
		if err != nil {
			b.Fatal(err)
		}
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapAlloc)
		b.ReportMetric(float64(peak-base)/(1<<20), "peak-heap-MB")
		b.ReportMetric(float64(base)/(1<<20), "heap-before-MB")
		if got := len(h.head(roomID).State); got != len(st)+1 {
			b.Fatalf("current state has %d entries, want %d", got, len(st)+1)
		}
	}
}

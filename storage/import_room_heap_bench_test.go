package storage_test

import (
	"runtime"
	"sync"
	"testing"
	"time"
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
		h, v, join, state, chain := largeRoomJoin(b, members)

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
		if got := len(h.head(join.RoomID()).State); got != len(state)+1 {
			b.Fatalf("current state has %d entries, want %d", got, len(state)+1)
		}
	}
}

package main

import (
	"bytes"
	"context"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/apptest"
)

// BenchmarkIdleConnectionsHeap holds b.N idle syncs of each transport
// against an in-process Parley and reports the Go memory (heap in use plus
// goroutine stacks, tool and server together) per connection. With
// PARLEY_BENCH_HEAPPROFILE=FILE it writes a heap profile while they are
// held, in which the server's share can be told apart by its stacks:
//
//	PARLEY_BENCH_HEAPPROFILE=/tmp/heap.pprof go run ./storage/pgtest/pgtestrun -- \
//	  go test -run '^$' -bench IdleConnectionsHeap/longpoll -benchtime 2000x ./cmd/parley-bench
//	go tool pprof -sample_index=inuse_space -top -focus 'net/http.\(\*conn\).serve|clientapi' /tmp/heap.pprof
func BenchmarkIdleConnectionsHeap(b *testing.B) {
	for _, transport := range []string{longPoll, webSocket} {
		b.Run(transport, func(b *testing.B) {
			s := apptest.Start(b)
			c := newClient(s.URL)
			reg := &registrar{c: c, prefix: "heap", concurrency: 4, filter: syncFilter(true)}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			users, err := reg.registerMany(ctx, "idle", 10)
			if err != nil {
				b.Fatal(err)
			}
			before, beforeStack := goMemory(), stackInuse()
			beforeG := runtime.NumGoroutine()
			stats := &connStats{}
			rs := make([]*receiver, b.N)
			var wg sync.WaitGroup
			for i := range rs {
				rs[i] = newReceiver(c, users[i%len(users)], transport, stats, nil)
				wg.Go(func() { rs[i].run(ctx) })
			}
			readyCtx, readyCancel := context.WithTimeout(ctx, 5*time.Minute)
			defer readyCancel()
			if err := waitReady(readyCtx, rs); err != nil {
				b.Fatal(err)
			}
			held, heldStack := goMemory(), stackInuse()
			heldG := runtime.NumGoroutine()
			heldServerG := serverConnGoroutines()
			if path := os.Getenv("PARLEY_BENCH_HEAPPROFILE"); path != "" {
				f, err := os.Create(path)
				if err != nil {
					b.Fatal(err)
				}
				if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
					b.Fatal(err)
				}
				f.Close()
			}
			b.ReportMetric(float64(held-before)/float64(b.N)/1024, "KiB/conn")
			b.ReportMetric(float64(stats.held.Load()), "held")
			// The stacks apart: their share is set by the goroutines each
			// connection keeps (on both ends) and how deep they once ran.
			b.ReportMetric(float64(heldStack-beforeStack)/float64(b.N)/1024, "stack-KiB/conn")
			b.ReportMetric(float64(heldG-beforeG)/float64(b.N), "goroutines/conn")
			// The server's own: net/http's per connection (a parked
			// long-poll holds none).
			b.ReportMetric(float64(heldServerG)/float64(b.N), "server-goroutines/conn")
			cancel()
			wg.Wait()
		})
	}
}

// serverConnGoroutines counts the goroutines of the server's side of
// HTTP connections: net/http's serving goroutine and its background
// reader (the tool's client connections run other functions).
func serverConnGoroutines() int {
	buf := make([]byte, 64<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if bytes.Contains(g, []byte("net/http.(*conn).serve")) || bytes.Contains(g, []byte("net/http.(*connReader).backgroundRead")) {
			n++
		}
	}
	return n
}

// stackInuse is the goroutine stacks' memory, after a collection.
func stackInuse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.StackInuse
}

// goMemory is the heap in use plus goroutine stacks, after a collection.
// Two: buffers net/http put back in its sync.Pools (a hijack returns the
// response's) stay through one, and they are not held per connection.
func goMemory() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

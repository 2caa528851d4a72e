package queue_test

import (
	"testing"

	"github.com/parleyhq/parley/federation/queue"
	"github.com/parleyhq/parley/id"
)

// BenchmarkDrainBacklog measures how fast a destination's backlog of b.N
// events goes out (transactions of 50 over TLS to a receiver on loopback,
// each persisted before and acknowledged after it is sent), from the
// queue's start to the last acknowledgement; the sends that build the
// backlog are not timed.
func BenchmarkDrainBacklog(b *testing.B) {
	w := newWorld(b, queue.Config{CatchUpThreshold: 1 << 30}, hs2)
	room := w.room(id.NewUserID("bob", hs2))
	w.send(room, bodies("b", b.N)...)
	r := w.recv[hs2]
	b.ResetTimer()
	w.start()
	r.waitFor(b, "the backlog", func() bool { return len(r.bodies(b)) >= b.N })
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pdus/s")
}

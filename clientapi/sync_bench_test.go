package clientapi_test

import (
	"fmt"
	"testing"

	"github.com/parleyhq/parley/apptest"
)

// BenchmarkIncrementalSync measures one incremental /sync over HTTP on a
// real server and Postgres: a user in N rooms, one new message in one of
// them since the previous token. The send is not timed.
//
//	go run ./storage/pgtest/pgtestrun -- go test -run '^$' -bench IncrementalSync -benchmem ./clientapi
func BenchmarkIncrementalSync(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("rooms=%d", n), func(b *testing.B) {
			s := apptest.Start(b)
			_, tok := s.Register(b, "alice", pw)
			var roomIDs []string
			for range n {
				roomIDs = append(roomIDs, newRoom(b, s, tok, nil))
			}
			since := mustSync(b, s, tok, "").NextBatch
			i := 0
			for b.Loop() {
				b.StopTimer()
				room := roomIDs[i%n]
				id := sendText(b, s, tok, room, fmt.Sprintf("b%d", i), "hello")
				i++
				b.StartTimer()
				body := mustSync(b, s, tok, since)
				evs := body.Rooms.Join[room].Timeline.Events
				if len(evs) != 1 || evs[0].EventID != id {
					b.Fatalf("sync gave %+v, want the one new event", evs)
				}
				since = body.NextBatch
			}
		})
	}
}

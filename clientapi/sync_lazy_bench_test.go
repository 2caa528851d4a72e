package clientapi_test

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/parleyhq/parley/apptest"
)

// lazyFilter is an Element-like filter: lazy-loaded members.
const lazyFilter = `{"room":{"timeline":{"limit":20},"state":{"lazy_load_members":true}}}`

// BenchmarkLazyIncrementalSync measures a member's incremental /sync with
// lazy-loaded members after a message from another member, in a room of N
// members: the sync must add the sender's member event, which it reads as
// one state entry (StateEntriesBefore), not the room's whole state — its
// cost should not grow with N (issue #9's fan-out is N of these). The send
// is not timed.
//
//	go run ./storage/pgtest/pgtestrun -- go test -run '^$' -bench LazyIncrementalSync -benchmem ./clientapi
func BenchmarkLazyIncrementalSync(b *testing.B) {
	for _, n := range []int{10, 100} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			s := apptest.Start(b)
			alice, aliceTok := s.Register(b, "alice", pw)
			room := newRoom(b, s, aliceTok, obj{"preset": "public_chat"})
			var bobTok string
			for i := range n - 1 {
				_, tok := s.Register(b, fmt.Sprintf("m%d", i), pw)
				res := s.Do(b, http.MethodPost, v3+"/join/"+url.PathEscape(room), tok, obj{})
				apptest.MustStatus(b, res, http.StatusOK)
				bobTok = tok
			}
			since := mustSync(b, s, bobTok, "", "filter", lazyFilter).NextBatch
			i := 0
			for b.Loop() {
				b.StopTimer()
				id := sendText(b, s, aliceTok, room, fmt.Sprintf("b%d", i), "hello")
				i++
				b.StartTimer()
				body := mustSync(b, s, bobTok, since, "filter", lazyFilter)
				jr := body.Rooms.Join[room]
				evs := jr.Timeline.Events
				if len(evs) != 1 || evs[0].EventID != id {
					b.Fatalf("sync gave %+v, want the one new event", evs)
				}
				if findState(jr.State.Events, "m.room.member", alice) == nil {
					b.Fatalf("no member event of the sender %s in the state section %+v", alice, jr.State.Events)
				}
				since = body.NextBatch
			}
		})
	}
}

// BenchmarkInitialSync measures an initial /sync (lazy-loaded members) of
// a user in N rooms, which the builder reads several rooms at a time.
//
//	go run ./storage/pgtest/pgtestrun -- go test -run '^$' -bench 'InitialSync$' -benchmem ./clientapi
func BenchmarkInitialSync(b *testing.B) {
	for _, n := range []int{10, 100} {
		b.Run(fmt.Sprintf("rooms=%d", n), func(b *testing.B) {
			s := apptest.Start(b)
			_, tok := s.Register(b, "alice", pw)
			for i := range n {
				room := newRoom(b, s, tok, nil)
				sendText(b, s, tok, room, fmt.Sprintf("t%d", i), "hello")
			}
			for b.Loop() {
				body := mustSync(b, s, tok, "", "filter", lazyFilter)
				if len(body.Rooms.Join) != n {
					b.Fatalf("initial sync has %d joined rooms, want %d", len(body.Rooms.Join), n)
				}
			}
		})
	}
}

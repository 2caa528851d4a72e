package storage_test

import (
	"log/slog"
	"testing"

	"github.com/parleyhq/parley/rooms"
)

// BenchmarkMessagesLookForHoles: two /messages pages (20 events from the
// end, 20 more from its end token) of a room joined over federation whose history is held whole, with
// hole detection (backfill on: prev events of the page's remote events
// looked up) and without (a service with no backfiller).
//
//	go test ./storage/ -run '^$' -bench BenchmarkMessagesLookForHoles -benchtime 300x -count 1
func BenchmarkMessagesLookForHoles(b *testing.B) {
	h := newFedHarness(b)
	room, dave, _, _, _ := holeRoom(b, h, 200, func(int) int64 { return 0 })
	h.svc.SetBackfill(&remoteHistory{h: h})
	// Fill the hole and the history before the join once.
	for from := ""; ; {
		page, err := h.svc.Messages(h.ctx, dave, room, rooms.MessagesRequest{From: from, Dir: rooms.Backward, Limit: 100})
		if err != nil {
			b.Fatal(err)
		}
		if page.End == "" {
			break
		}
		from = page.End
	}
	plain := rooms.New(rooms.Config{ServerName: roomServer, Key: h.local}, h.st, h.notifier, nil, slog.Default())
	for _, bc := range []struct {
		name string
		svc  *rooms.Service
	}{{"no_backfill", plain}, {"holes", h.svc}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				page, err := bc.svc.Messages(h.ctx, dave, room, rooms.MessagesRequest{Dir: rooms.Backward, Limit: 20})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := bc.svc.Messages(h.ctx, dave, room, rooms.MessagesRequest{From: page.End, Dir: rooms.Backward, Limit: 20}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

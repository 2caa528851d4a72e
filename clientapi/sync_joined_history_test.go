package clientapi_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/parleyhq/parley/apptest"
)

// TestSyncRoomJoinedInRangeCarriesRecentHistory: an incremental sync that
// brings a room the user has just joined gives its latest events, as an
// initial sync would — also those sent before the since token — with
// limited set when older ones were left out, so that a client seeing the
// room for the first time can show recent history and page back.
func TestSyncRoomJoinedInRangeCarriesRecentHistory(t *testing.T) {
	s := apptest.Start(t)
	_, aliceTok := s.Register(t, "alice", pw)
	_, bobTok := s.Register(t, "bob", pw)
	room := newRoom(t, s, aliceTok, obj{"preset": "public_chat"})
	putState(t, s, aliceTok, room, "m.room.history_visibility", obj{"history_visibility": "shared"})
	for i := range 4 {
		sendText(t, s, aliceTok, room, fmt.Sprint(i), fmt.Sprintf("history %d", i))
	}
	since := mustSync(t, s, bobTok, "").NextBatch // bob's client is syncing already

	roomPost(t, s, bobTok, room, "join", nil)
	limit3 := `{"room":{"timeline":{"limit":3}}}`
	res := mustSync(t, s, bobTok, since, "filter", limit3)
	jr, ok := res.Rooms.Join[room]
	if !ok {
		t.Fatalf("joined room missing: %+v", res.Rooms)
	}
	if got := bodies(jr.Timeline.Events); !slices.Equal(got, []string{"history 2", "history 3"}) {
		t.Errorf("timeline bodies %q, want the two latest messages before the join", got)
	}
	if !jr.Timeline.Limited || jr.Timeline.PrevBatch == "" {
		t.Errorf("limited %v, prev_batch %q: older history is left out, the client must be able to page back", jr.Timeline.Limited, jr.Timeline.PrevBatch)
	}

	// Joined-only history stays hidden from a newcomer, whatever the range.
	room2 := newRoom(t, s, aliceTok, obj{"preset": "public_chat"})
	putState(t, s, aliceTok, room2, "m.room.history_visibility", obj{"history_visibility": "joined"})
	sendText(t, s, aliceTok, room2, "secret", "before bob")
	since = res.NextBatch
	roomPost(t, s, bobTok, room2, "join", nil)
	res = mustSync(t, s, bobTok, since)
	if got := bodies(res.Rooms.Join[room2].Timeline.Events); len(got) != 0 {
		t.Errorf("saw %q from before the join in a joined-only room", got)
	}
}

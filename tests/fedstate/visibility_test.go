package fedstate

import (
	"net/http"
	"slices"
	"testing"

	"github.com/parleyhq/parley/apptest"
)

// TestForkedHistoryVisibilityFollowsEachEventsState: while hs1 is down,
// bob writes on hs2; hs1 comes back and alice makes the history "joined"
// before bob's message arrives. Bob's message was built on the "shared"
// state: dave (hs1) and erin (hs2), who join afterwards, may read it on
// both servers (the visibility "at the event", spec "History
// visibility"), though on hs1 it arrived after the change; alice's
// message written after the change stays hidden from them. /messages,
// /event and an initial /sync agree.
func TestForkedHistoryVisibilityFollowsEachEventsState(t *testing.T) {
	srvs := apptest.StartFederation(t, 2)
	room, alice, bob, carol := joinedRoom(t, srvs, false)
	var theirs string
	forkWhileHS1IsDown(t, alice, func() {
		theirs = bob.must(t, http.MethodPut, "/_matrix/client/v3/rooms/"+esc(room)+"/send/m.room.message/fork", map[string]any{"msgtype": "m.text", "body": "while hs1 was down"}).String("event_id")
	}, func() {
		alice.must(t, http.MethodPut, "/_matrix/client/v3/rooms/"+esc(room)+"/state/m.room.history_visibility/", map[string]any{"history_visibility": "joined"})
	})
	mine := alice.must(t, http.MethodPut, "/_matrix/client/v3/rooms/"+esc(room)+"/send/m.room.message/after", map[string]any{"msgtype": "m.text", "body": "after the change"}).String("event_id")
	converge(t, room, []account{alice, carol}, nil)
	waitFor(t, "both messages on both servers", func() (bool, string) {
		for _, a := range []account{alice, carol} {
			for _, eid := range []string{theirs, mine} {
				if res := a.do(t, http.MethodGet, "/_matrix/client/v3/rooms/"+esc(room)+"/event/"+esc(eid), nil); res.Status != http.StatusOK {
					return false, string(a.srv.Name) + ": " + string(res.Raw)
				}
			}
		}
		return true, ""
	})
	if !forked(t, alice.srv, room) {
		t.Fatal("the graph did not fork on hs1")
	}

	dave := newAccount(t, srvs[0], "dave")
	erin := newAccount(t, srvs[1], "erin")
	dave.must(t, http.MethodPost, "/_matrix/client/v3/join/"+esc(room), map[string]any{})
	erin.must(t, http.MethodPost, "/_matrix/client/v3/join/"+esc(room)+"?server_name=hs1.test", map[string]any{})
	for _, reader := range []account{dave, erin} {
		name := string(reader.srv.Name)
		if res := reader.do(t, http.MethodGet, "/_matrix/client/v3/rooms/"+esc(room)+"/event/"+esc(theirs), nil); res.Status != http.StatusOK {
			t.Errorf("%s: the message built on shared history is hidden: %d %s", name, res.Status, res.Raw)
		}
		if res := reader.do(t, http.MethodGet, "/_matrix/client/v3/rooms/"+esc(room)+"/event/"+esc(mine), nil); res.Status != http.StatusNotFound {
			t.Errorf("%s: the message sent under joined history is shown: %d %s", name, res.Status, res.Raw)
		}
		res := reader.must(t, http.MethodGet, "/_matrix/client/v3/rooms/"+esc(room)+"/messages?dir=b&limit=50", nil)
		var ids []string
		chunk, _ := res.Body["chunk"].([]any)
		for _, c := range chunk {
			ev, _ := c.(map[string]any)
			id, _ := ev["event_id"].(string)
			ids = append(ids, id)
		}
		if !slices.Contains(ids, theirs) || slices.Contains(ids, mine) {
			t.Errorf("%s: /messages %v: want %s, not %s", name, ids, theirs, mine)
		}
		for _, after := range []bool{false, true} {
			s := newSyncer(t, reader, room, after)
			var tl []string
			for _, ev := range s.timeline {
				tl = append(tl, ev.EventID)
			}
			if !slices.Contains(tl, theirs) || slices.Contains(tl, mine) {
				t.Errorf("%s, state_after %v: sync timeline %v: want %s, not %s", name, after, tl, theirs, mine)
			}
		}
	}
}

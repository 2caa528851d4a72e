package storage_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/rooms"
)

// TestHistoryVisibilityOfAForkedEventIsItsOwnState: alice makes the
// room's history "joined" here while bob's server sends a message built
// before that change. The message's state says "shared": carol, who joins
// later, may see it (spec "History visibility": the visibility as of the
// state at the event), though it reached this server after the change;
// alice's message after the change stays hidden from her. /event,
// /messages and carol's initial sync agree.
func TestHistoryVisibilityOfAForkedEventIsItsOwnState(t *testing.T) {
	h := newFedHarness(t)
	room, alice, bob, _ := h.publicRoom("")
	carol := uniqueUser(t, "carol")
	fork := h.head(room)
	h.mustSetState(alice, room, "m.room.history_visibility", "", `{"history_visibility":"joined"}`)
	theirs := h.remoteEvent(fork, bob, "m.room.message", nil, `{"msgtype":"m.text","body":"before the change, there"}`, fork.Extremities, fork.State)
	h.mustReceive(theirs)
	if k := h.known(room, theirs.EventID()); k == nil || k.SoftFailed || k.Rejected != "" {
		t.Fatalf("bob's message was not accepted: %+v", k)
	}
	mine, err := h.svc.Send(h.ctx, rooms.Viewer{User: alice, Device: "D"}, room, "m.room.message", "after", []byte(`{"msgtype":"m.text","body":"after the change, here"}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.Join(h.ctx, carol, room, ""); err != nil {
		t.Fatal(err)
	}

	if _, err := h.svc.Event(h.ctx, carol, room, theirs.EventID()); err != nil {
		t.Errorf("carol cannot read bob's message, whose state was shared: %v", err)
	}
	if _, err := h.svc.Event(h.ctx, carol, room, mine); !errors.Is(err, mxerr.NotFound) {
		t.Errorf("carol reads alice's message sent while the history was joined: err %v", err)
	}
	page, err := h.svc.Messages(h.ctx, carol, room, rooms.MessagesRequest{Dir: rooms.Backward, Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	var got []id.EventID
	for _, se := range page.Chunk {
		got = append(got, se.Event.EventID())
	}
	if !slices.Contains(got, theirs.EventID()) || slices.Contains(got, mine) {
		t.Errorf("/messages for carol %v: want bob's %s, not alice's %s", got, theirs.EventID(), mine)
	}

	// The same for the timeline of carol's first sync.
	c := newSyncClients(t, h, carol, room)
	for _, cl := range c {
		if !slices.Contains(cl.timeline, theirs.EventID()) || slices.Contains(cl.timeline, mine) {
			t.Errorf("state_after=%v: carol's sync timeline %v: want bob's %s, not alice's %s", cl.stateAfter, cl.timeline, theirs.EventID(), mine)
		}
	}
}

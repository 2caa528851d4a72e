package storage_test

import (
	"fmt"
	"log/slog"
	"slices"
	"testing"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/storage"
	"github.com/parleyhq/parley/storage/pgtest"
)

// TestLocalEventsOnAClampedRemoteEventComeAfterIt: a remote event that
// claims a depth below its prev events' gets a topological position above
// them (storage/topological.go); a local event built on it takes the
// depth the spec asks for (its prev events' depth + 1, far below the room's
// top), and still comes after it in /messages — a message (the group
// commit's prebuilt path) and a state event (the locked path) alike.
func TestLocalEventsOnAClampedRemoteEventComeAfterIt(t *testing.T) {
	h := newFedHarness(t)
	room, alice, bob, _ := h.publicRoom("")
	for i := range 5 {
		if _, err := h.svc.Send(h.ctx, rooms.Viewer{User: alice, Device: "D"}, room, "m.room.message", fmt.Sprintf("l%d", i),
			[]byte(`{"msgtype":"m.text","body":"local"}`)); err != nil {
			t.Fatal(err)
		}
	}
	hd := h.head(room)
	shallow := h.buildAtDepth(2, hd, bob, `{"msgtype":"m.text","body":"shallow"}`, hd.Extremities)
	h.mustReceive(shallow)

	msg, err := h.svc.Send(h.ctx, rooms.Viewer{User: alice, Device: "D"}, room, "m.room.message", "after",
		[]byte(`{"msgtype":"m.text","body":"after the shallow one"}`))
	if err != nil {
		t.Fatal(err)
	}
	if d := h.known(room, msg).Event.Depth(); d != 3 {
		t.Fatalf("the local event's depth is %d, want 3 (the shallow event's + 1)", d)
	}
	topic, err := h.svc.SetState(h.ctx, alice, room, "m.room.topic", "", []byte(`{"topic":"after"}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []id.EventID{topic, msg, shallow.EventID()}
	page, err := h.svc.Messages(h.ctx, alice, room, rooms.MessagesRequest{Dir: rooms.Backward, Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if got := idsOfStored(page.Chunk); !slices.Equal(got, want) {
		t.Fatalf("/messages back from the end: %v, want %v", got, want)
	}
	// The head as loaded from the database (not the cached one) gives the
	// same answer.
	fresh := rooms.New(rooms.Config{ServerName: roomServer, Key: h.local}, storage.NewRooms(pgtest.NewPool(t)), &recordingNotifier{}, nil, slog.Default())
	next, err := fresh.Send(h.ctx, rooms.Viewer{User: alice, Device: "D"}, room, "m.room.message", "reloaded",
		[]byte(`{"msgtype":"m.text","body":"from a fresh store"}`))
	if err != nil {
		t.Fatal(err)
	}
	page, err = fresh.Messages(h.ctx, alice, room, rooms.MessagesRequest{Dir: rooms.Backward, Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if got := idsOfStored(page.Chunk); !slices.Equal(got, []id.EventID{next, topic}) {
		t.Fatalf("/messages after a send on a reloaded head: %v, want [%s %s]", got, next, topic)
	}
}

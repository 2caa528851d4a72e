package storage_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/storage"
)

// TestMembersUnchangedMissesNoChange: the log answers "no membership that
// matters to the device lists stream changed" (Sync.MembersUnchanged) only
// when it is true — a join, a leave or the user's own change within the
// range makes it "cannot tell", also once a later change of the same room
// has followed — and says "unchanged" for a range of messages, or of
// changes in rooms the user is not in, asked right after the position
// read (as a woken sync asks). Whenever it answers "unchanged", the
// database's MembershipDeltas of the same range is empty too.
func TestMembersUnchangedMissesNoChange(t *testing.T) {
	svc, st, pool := newCountedRoomService(t)
	sync := storage.NewSync(st)
	keys := storage.NewKeys(pool)
	ctx := context.Background()
	alice, bob, carol := uniqueUser(t, "alice"), uniqueUser(t, "bob"), uniqueUser(t, "carol")
	posOf := func() int64 {
		t.Helper()
		p, err := sync.CurrentStreamPos(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	send := func(room id.RoomID, txn string) {
		t.Helper()
		if _, err := svc.Send(ctx, rooms.Viewer{User: alice, Device: "D"}, room, "m.room.message", txn, json.RawMessage(`{"body":"x"}`)); err != nil {
			t.Fatal(err)
		}
	}
	// joinedAt: bob's joined rooms at upTo, as a sync reads them.
	joinedAt := func(upTo int64) []id.RoomID {
		t.Helper()
		ms, err := sync.Memberships(ctx, bob, upTo)
		if err != nil {
			t.Fatal(err)
		}
		var out []id.RoomID
		for _, m := range ms {
			if m.Membership == "join" {
				out = append(out, m.RoomID)
			}
		}
		return out
	}
	quiet := func(after, upTo int64) bool {
		t.Helper()
		var q bool
		if n := roundTrips(pool, func() { q = sync.MembersUnchanged(bob, joinedAt(upTo), after, upTo) }); n != 1 {
			t.Fatalf("MembersUnchanged with its Memberships read: %d round trips, want 1 (the Memberships read)", n)
		}
		return q
	}

	// expect: asked right after a position read, as a sync asks.
	expect := func(name string, after, upTo int64, want bool) {
		t.Helper()
		if got := quiet(after, upTo); got != want {
			t.Errorf("%s: (%d, %d] unchanged = %v, want %v", name, after, upTo, got, want)
		}
	}

	before := posOf()
	room, err := svc.CreateRoom(ctx, alice, rooms.CreateRequest{Preset: "public_chat"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := svc.CreateRoom(ctx, alice, rooms.CreateRequest{Preset: "public_chat"})
	if err != nil {
		t.Fatal(err)
	}
	p0 := posOf() // the log has read up to here
	if _, err := svc.Join(ctx, bob, room, ""); err != nil {
		t.Fatal(err)
	}
	p1 := posOf()
	expect("bob's own join", p0, p1, false)
	send(room, "t1")
	p2 := posOf()
	expect("a message only", p1, p2, true)
	expect("before the log started", before, p2, false)
	if _, err := svc.Join(ctx, carol, other, ""); err != nil { // a room bob is not in
		t.Fatal(err)
	}
	send(room, "t2")
	p3 := posOf()
	expect("carol joins a room bob is not in", p2, p3, true)
	if _, err := svc.Join(ctx, carol, room, ""); err != nil {
		t.Fatal(err)
	}
	p4 := posOf()
	expect("carol joins bob's room", p3, p4, false)
	send(room, "t3")
	p5 := posOf()
	expect("a message after carol's join", p4, p5, true)
	if err := svc.Leave(ctx, carol, room, ""); err != nil {
		t.Fatal(err)
	}
	p6 := posOf()
	expect("carol leaves", p5, p6, false)
	expect("carol joins, and leaves after the range", p2, p4, false)
	send(room, "t4")
	p7 := posOf()
	expect("a message after the leave", p6, p7, true)

	// Every range of positions read: "unchanged" never hides a delta the
	// database has.
	ps := []int64{p0, p1, p2, p3, p4, p5, p6, p7}
	for i, after := range ps {
		for _, upTo := range ps[i+1:] {
			if !quiet(after, upTo) {
				continue
			}
			joined, left, err := keys.MembershipDeltas(ctx, bob, after, upTo)
			if err != nil {
				t.Fatal(err)
			}
			if len(joined)+len(left) != 0 {
				t.Errorf("(%d, %d] unchanged, but the database has joined %v, left %v", after, upTo, joined, left)
			}
		}
	}
}

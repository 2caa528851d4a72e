package storage_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/storage"
	"github.com/parleyhq/parley/syncer"
)

func TestSyncStoreMemberships(t *testing.T) {
	svc, st := newRoomService(t)
	sync := storage.NewSync(st)
	ctx := context.Background()
	alice, bob := uniqueUser(t, "alice"), uniqueUser(t, "bob")
	room, err := svc.CreateRoom(ctx, alice, rooms.CreateRequest{Preset: "public_chat"})
	if err != nil {
		t.Fatal(err)
	}
	posOf := func() int64 {
		t.Helper()
		p, err := sync.CurrentStreamPos(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	beforeJoin := posOf()
	if _, err := svc.Join(ctx, bob, room, ""); err != nil {
		t.Fatal(err)
	}
	joined := posOf()
	if err := svc.Leave(ctx, bob, room, ""); err != nil {
		t.Fatal(err)
	}
	left := posOf()

	membershipAt := func(upTo int64) string {
		t.Helper()
		ms, err := sync.Memberships(ctx, bob, upTo)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if m.RoomID == room {
				return m.Membership
			}
		}
		return ""
	}
	cases := []struct {
		name string
		upTo int64
		want string
	}{
		{"before the join: no membership", beforeJoin, ""},
		{"after the join, though the table already says leave", joined, "join"},
		{"now", left, "leave"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := membershipAt(c.upTo); got != c.want {
				t.Errorf("membership at %d = %q, want %q", c.upTo, got, c.want)
			}
		})
	}

	t.Run("changes carry the membership they replaced", func(t *testing.T) {
		changes, err := sync.MembershipChanges(ctx, bob, beforeJoin, left)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, c := range changes {
			got = append(got, c.Prev+">"+c.Membership)
		}
		if want := []string{">join", "join>leave"}; !slices.Equal(got, want) {
			t.Errorf("changes %v, want %v", got, want)
		}
	})
	t.Run("active rooms", func(t *testing.T) {
		quiet, err := svc.CreateRoom(ctx, alice, rooms.CreateRequest{})
		if err != nil {
			t.Fatal(err)
		}
		after := posOf()
		if _, err := svc.Send(ctx, rooms.Viewer{User: alice, Device: "D"}, room, "m.room.message", "t1", json.RawMessage(`{"body":"x"}`)); err != nil {
			t.Fatal(err)
		}
		active, err := sync.ActiveRooms(ctx, []id.RoomID{room, quiet}, after, posOf())
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(active, []id.RoomID{room}) {
			t.Errorf("active %v, want only %s", active, room)
		}
	})
	t.Run("summary", func(t *testing.T) {
		carol := uniqueUser(t, "carol")
		if _, err := svc.Join(ctx, carol, room, ""); err != nil {
			t.Fatal(err)
		}
		if err := svc.Invite(ctx, alice, room, bob, ""); err != nil {
			t.Fatal(err)
		}
		sum, err := sync.RoomSummary(ctx, room, alice)
		if err != nil {
			t.Fatal(err)
		}
		want := syncer.Summary{Joined: 2, Invited: 1, Heroes: []id.UserID{carol, bob}}
		if sum.Joined != want.Joined || sum.Invited != want.Invited || !slices.Equal(sum.Heroes, want.Heroes) {
			t.Errorf("summary %+v, want %+v", sum, want)
		}
	})
	t.Run("state changes keep the latest per key", func(t *testing.T) {
		from := posOf()
		for _, topic := range []string{"a", "b"} {
			if _, err := svc.SetState(ctx, alice, room, "m.room.topic", "", json.RawMessage(`{"topic":"`+topic+`"}`)); err != nil {
				t.Fatal(err)
			}
		}
		changes, err := sync.StateChanges(ctx, room, from, posOf())
		if err != nil {
			t.Fatal(err)
		}
		if len(changes) != 1 {
			t.Fatalf("%d changes, want the latest topic only", len(changes))
		}
		if got := string(changes[0].Event.Content()); got != `{"topic":"b"}` {
			t.Errorf("latest topic %s", got)
		}
	})
}

package storage_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/storage"
)

// TestStateEntriesBeforeMatchesStateBefore checks the targeted lookup of
// a lazy-loading sync against the whole state, before every event of a
// room whose snapshots span more than one delta chain (joins, leaves,
// rejoins and name changes, enough for a full snapshot in between).
func TestStateEntriesBeforeMatchesStateBefore(t *testing.T) {
	svc, st := newRoomService(t)
	sync := storage.NewSync(st)
	ctx := context.Background()
	alice, bob, carol := uniqueUser(t, "alice"), uniqueUser(t, "bob"), uniqueUser(t, "carol")
	room, err := svc.CreateRoom(ctx, alice, rooms.CreateRequest{Preset: "public_chat"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := svc.Join(ctx, bob, room, ""); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			if _, err := svc.Join(ctx, carol, room, ""); err != nil {
				t.Fatal(err)
			}
		}
		name, _ := json.Marshal(map[string]string{"name": fmt.Sprint("room ", i)})
		if _, err := svc.SetState(ctx, alice, room, "m.room.name", "", name); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if err := svc.Leave(ctx, bob, room, ""); err != nil {
				t.Fatal(err)
			}
		}
	}
	evs, err := st.Timeline(ctx, room, 0, rooms.Forward, 1000)
	if err != nil {
		t.Fatal(err)
	}
	keys := []auth.StateKey{
		{Type: auth.TypeMember, StateKey: string(alice)},
		{Type: auth.TypeMember, StateKey: string(bob)},
		{Type: auth.TypeMember, StateKey: string(carol)},
		{Type: auth.TypeMember, StateKey: "@nobody:" + string(roomServer)},
		{Type: "m.room.name"},
	}
	seqs := []int64{1 << 62} // past the latest event: the current state
	for _, se := range evs {
		seqs = append(seqs, se.Seq)
	}
	for _, seq := range seqs {
		whole, err := st.StateBefore(ctx, room, seq)
		if err != nil {
			t.Fatal(err)
		}
		got, err := sync.StateEntriesBefore(ctx, room, seq, keys)
		if err != nil {
			t.Fatal(err)
		}
		want := 0
		for _, k := range keys {
			w, g := whole[k], got[k]
			if w != nil {
				want++
			}
			if (w == nil) != (g == nil) || (w != nil && w.EventID() != g.EventID()) {
				t.Errorf("before seq %d, %v: got %v, want %v", seq, k, g, w)
			}
		}
		if len(got) != want {
			t.Errorf("before seq %d: %d entries, want %d", seq, len(got), want)
		}
	}
	if none, err := sync.StateEntriesBefore(ctx, room, 1, nil); err != nil || len(none) != 0 {
		t.Errorf("no keys: got %v, %v", none, err)
	}
}

package rooms

import (
	"encoding/json"
	"testing"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/event"
	"github.com/parleyhq/parley/rooms/roomversion"
	"github.com/parleyhq/parley/rooms/signing"
)

// stateAt builds a stored state event at seq (signatures do not matter to
// the visibility rules).
func stateAt(t *testing.T, seq int64, typ, key string, content any) *StoredEvent {
	t.Helper()
	k, err := signing.Generate("ed25519:v")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(content)
	ev, err := event.Build(roomversion.MustLookup("10"), event.Proto{
		Sender: "@alice:x", Type: typ, StateKey: &key, Content: raw, RoomID: "!r:x", Depth: seq, OriginServerTS: seq,
	}, "x", k)
	if err != nil {
		t.Fatal(err)
	}
	return &StoredEvent{Event: ev, Seq: seq, RoomID: "!r:x"}
}

func TestVisibilityRules(t *testing.T) {
	const bob = id.UserID("@bob:x")
	member := func(seq int64, m string) *StoredEvent {
		return stateAt(t, seq, "m.room.member", string(bob), map[string]any{"membership": m})
	}
	hv := func(seq int64, v string) *StoredEvent {
		return stateAt(t, seq, "m.room.history_visibility", "", map[string]any{"history_visibility": v})
	}
	// Bob is invited at 10, joins at 20, leaves at 30.
	mine := []*StoredEvent{member(10, "invite"), member(20, "join"), member(30, "leave")}
	tests := []struct {
		name string
		hv   []*StoredEvent
		seq  int64
		want bool
	}{
		{"shared: before the invite, bob joined later", nil, 5, true},
		{"shared: after leaving", nil, 35, false},
		{"joined: before joining", []*StoredEvent{hv(1, "joined")}, 15, false},
		{"joined: his own join", []*StoredEvent{hv(1, "joined")}, 20, true},
		{"joined: while joined", []*StoredEvent{hv(1, "joined")}, 25, true},
		{"invited: while invited", []*StoredEvent{hv(1, "invited")}, 15, true},
		{"invited: before the invite", []*StoredEvent{hv(1, "invited")}, 5, false},
		{"world_readable: after leaving", []*StoredEvent{hv(1, "world_readable")}, 40, true},
		{"the visibility before the event applies", []*StoredEvent{hv(1, "world_readable"), hv(40, "joined")}, 40, true},
		{"a later change does not apply back", []*StoredEvent{hv(1, "joined"), hv(40, "world_readable")}, 5, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := &visibility{hv: tc.hv, mine: mine, current: "leave"}
			if got := v.canSee(tc.seq); got != tc.want {
				t.Fatalf("canSee(%d) = %v, want %v", tc.seq, got, tc.want)
			}
		})
	}
}

package syncer

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/event"
	"github.com/parleyhq/parley/rooms/roomversion"
	"github.com/parleyhq/parley/rooms/signing"
)

// visTimeline builds a room's events from a compact script: "hv:joined"
// sets the visibility, "bob:join" changes bob's membership, "msg" is a
// message from alice.
type visTimeline struct {
	t   *testing.T
	key signing.Key
	v   roomversion.Version
	seq int64
}

func (b *visTimeline) build(script []string) []*rooms.StoredEvent {
	b.t.Helper()
	var out []*rooms.StoredEvent
	for _, step := range script {
		p := event.Proto{Sender: "@alice:x", RoomID: "!r:x", Type: "m.room.message", Content: json.RawMessage(`{"body":"m"}`),
			Depth: b.seq + 1, OriginServerTS: 1}
		switch what, arg, _ := strings.Cut(step, ":"); {
		case what == "hv":
			p.Type, p.StateKey = typeHistoryVisibility, ptr("")
			p.Content = json.RawMessage(fmt.Sprintf(`{"history_visibility":%q}`, arg))
		case what == "bob":
			p.Type, p.StateKey, p.Sender = "m.room.member", ptr("@bob:x"), "@bob:x"
			p.Content = json.RawMessage(fmt.Sprintf(`{"membership":%q}`, arg))
		}
		ev, err := event.Build(b.v, p, "x", b.key)
		if err != nil {
			b.t.Fatal(err)
		}
		b.seq++
		out = append(out, &rooms.StoredEvent{Event: ev, RoomID: "!r:x", Seq: b.seq, StreamPos: b.seq})
	}
	return out
}

func ptr(s string) *string { return &s }

func TestVisibleFlags(t *testing.T) {
	key, err := signing.Generate("ed25519:t")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name        string
		before      []string // events making the state before the window
		window      []string
		joinedAfter bool
		want        string // one letter per window event: v visible, - hidden
	}{
		{"joined: nothing before the join", []string{"hv:joined"}, []string{"msg", "bob:invite", "msg", "bob:join", "msg"}, true, "---vv"},
		{"invited: visible from the invite", []string{"hv:invited"}, []string{"msg", "bob:invite", "msg", "bob:join", "msg"}, true, "-vvvv"},
		{"shared: all history for a member who joins", []string{"hv:shared"}, []string{"msg", "msg", "bob:join", "msg"}, true, "vvvv"},
		{"shared without a later join: hidden", []string{"hv:shared"}, []string{"msg", "msg"}, false, "--"},
		{"world_readable", []string{"hv:world_readable"}, []string{"msg"}, false, "v"},
		{"no visibility set means shared", nil, []string{"msg", "bob:join"}, true, "vv"},
		{"nothing after a leave, but the leave itself", []string{"hv:joined", "bob:join"}, []string{"msg", "bob:leave", "msg"}, false, "vv-"},
		{"visibility change seen from either side", []string{"hv:joined"}, []string{"hv:world_readable", "msg", "hv:joined", "msg"}, false, "vvv-"},
		{"shared history before a rejoin", []string{"hv:shared", "bob:join"}, []string{"bob:leave", "msg", "bob:join", "msg"}, true, "vvvv"},
		{"joined history not visible between leave and rejoin", []string{"hv:joined", "bob:join"}, []string{"bob:leave", "msg", "bob:join", "msg"}, true, "v-vv"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := &visTimeline{t: t, key: key, v: roomversion.MustLookup("10")}
			before := rooms.State{}
			for _, se := range b.build(c.before) {
				before = before.With(se.Event)
			}
			flags := visibleFlags("@bob:x", before, b.build(c.window), c.joinedAfter, nil)
			var got strings.Builder
			for _, f := range flags {
				if f {
					got.WriteByte('v')
				} else {
					got.WriteByte('-')
				}
			}
			if got.String() != c.want {
				t.Errorf("got %s, want %s", got.String(), c.want)
			}
		})
	}
}

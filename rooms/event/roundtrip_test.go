package event

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/canonicaljson"
	"github.com/parleyhq/parley/rooms/roomversion"
)

// Build → serialise → parse → verify → same id, for every room version and
// for create, member, state, message and redaction events.
func TestRoundTripEveryVersion(t *testing.T) {
	const alice = id.UserID("@alice:a.example")
	for _, v := range roomversion.All() {
		t.Run("v"+string(v.ID), func(t *testing.T) {
			kr := newKeyring(t, "a.example")
			b := &builder{t: t, v: v, server: "a.example", key: kr.key("a.example"), ts: 1000}
			create, join := b.createRoom(alice)
			msg := b.build(alice, "m.room.message", nil, `{"body":"hi","msgtype":"m.text"}`, []*Event{join}, []*Event{create, join})
			redContent := `{}`
			if v.V11Semantics {
				redContent = `{"redacts":"` + string(msg.EventID()) + `"}`
			}
			p := Proto{Sender: alice, Type: "m.room.redaction", Content: json.RawMessage(redContent), RoomID: b.room,
				PrevEvents: []Ref{msg.Ref()}, AuthEvents: []Ref{join.Ref()}, Depth: msg.Depth() + 1, OriginServerTS: 2000}
			if !v.V11Semantics {
				p.Redacts = msg.EventID()
			}
			redaction, err := Build(v, p, "a.example", b.key)
			if err != nil {
				t.Fatal(err)
			}

			for _, e := range []*Event{create, join, msg, redaction} {
				again := mustParse(t, v, e.Raw())
				if again.EventID() != e.EventID() {
					t.Errorf("%s: id %s after parsing, %s when built", e.Type(), again.EventID(), e.EventID())
				}
				if err := Verify(t.Context(), again, kr.lookup); err != nil {
					t.Errorf("%s: %v", e.Type(), err)
				}
				if !bytes.Equal(again.Raw(), e.Raw()) {
					t.Errorf("%s: raw bytes differ", e.Type())
				}
				checkIDGrammar(t, v, e)
			}

			if got := redaction.Redacts(); got != msg.EventID() {
				t.Errorf("Redacts() = %q, want %q", got, msg.EventID())
			}
			if got := join.Membership(); got != "join" {
				t.Errorf("Membership() = %q", got)
			}
			if sk := create.StateKey(); sk == nil || *sk != "" {
				t.Errorf("create state key = %v", sk)
			}
			if msg.StateKey() != nil {
				t.Error("message has a state key")
			}
			if msg.Depth() != 3 || join.Depth() != 2 {
				t.Errorf("depths %d, %d", join.Depth(), msg.Depth())
			}
			if got := msg.PrevEventIDs(); len(got) != 1 || got[0] != join.EventID() {
				t.Errorf("prev events %v", got)
			}
			wantAuth := []id.EventID{create.EventID(), join.EventID()}
			if got := msg.AuthEventIDs(); len(got) != 2 || got[0] != wantAuth[0] || got[1] != wantAuth[1] {
				t.Errorf("auth events %v, want %v", got, wantAuth)
			}
			if v.CreateEventDefinesRoomID {
				if create.RoomID() != "" {
					t.Errorf("v12 create has room id %q", create.RoomID())
				}
				if want := id.RoomID("!" + strings.TrimPrefix(string(create.EventID()), "$")); msg.RoomID() != want {
					t.Errorf("room id %s, want %s", msg.RoomID(), want)
				}
			} else if create.RoomID() != b.room || msg.RoomID() != b.room {
				t.Errorf("room ids %q %q, want %q", create.RoomID(), msg.RoomID(), b.room)
			}
			if v.V11Semantics == (msg.Origin() != "") {
				t.Errorf("origin %q in room version %s", msg.Origin(), v.ID)
			}
			if v.EventFormat == roomversion.FormatV1 {
				if prev := msg.PrevEvents(); prev[0].SHA256 == "" {
					t.Error("v1 prev_events pair has no hash")
				}
			}
		})
	}
}

func checkIDGrammar(t *testing.T, v roomversion.Version, e *Event) {
	t.Helper()
	s := string(e.EventID())
	switch v.EventFormat {
	case roomversion.FormatV1:
		if !strings.HasPrefix(s, "$") || !strings.HasSuffix(s, ":a.example") {
			t.Errorf("v1 event id %s", s)
		}
	case roomversion.FormatV3:
		if !validHashID(s[1:], false) {
			t.Errorf("v3 event id %s", s)
		}
	default:
		if !validHashID(s[1:], true) || strings.ContainsAny(s, "+/") {
			t.Errorf("v4+ event id %s", s)
		}
	}
}

func TestAccessors(t *testing.T) {
	v := roomversion.MustLookup("10")
	kr := newKeyring(t, "a.example")
	b := &builder{t: t, v: v, server: "a.example", key: kr.key("a.example"), ts: 1000}
	_, join := b.createRoom("@alice:a.example")
	raw := reencode(join, func(o canonicaljson.Value) canonicaljson.Value {
		return o.With("unsigned", mustValue(t, `{"age":5}`))
	})
	e := mustParse(t, v, raw)
	if got := string(e.Unsigned()); got != `{"age":5}` {
		t.Errorf("Unsigned() = %s", got)
	}
	sigs := e.Signatures()
	if _, ok := sigs["a.example"][b.key.ID()]; !ok || len(sigs) != 1 {
		t.Errorf("Signatures() = %v", sigs)
	}
	if h := e.Hashes(); len(h["sha256"]) != 43 {
		t.Errorf("Hashes() = %v", h)
	}
	if got := string(e.Content()); got != `{"membership":"join"}` {
		t.Errorf("Content() = %s", got)
	}
	if e.Origin() != "a.example" || e.Sender() != "@alice:a.example" || e.Type() != "m.room.member" {
		t.Errorf("origin %q sender %q type %q", e.Origin(), e.Sender(), e.Type())
	}
	if e.EventID() != join.EventID() {
		t.Error("unsigned changed the event id")
	}
}

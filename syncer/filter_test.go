package syncer

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/parleyhq/parley/mxerr"
)

func TestParseFilterRefusals(t *testing.T) {
	cases := []struct {
		name  string
		in    string
		want  *mxerr.Error
		field string
	}{
		{"not JSON", `{"room":`, mxerr.NotJSON, ""},
		{"empty", ``, mxerr.NotJSON, ""},
		{"array", `[1]`, mxerr.BadJSON, ""},
		{"limit of the wrong type", `{"room":{"timeline":{"limit":"ten"}}}`, mxerr.BadJSON, "room.timeline.limit"},
		{"zero limit", `{"room":{"timeline":{"limit":0}}}`, mxerr.BadJSON, "room.timeline.limit"},
		{"negative presence limit", `{"presence":{"limit":-1}}`, mxerr.BadJSON, "presence.limit"},
		{"types not a list", `{"account_data":{"types":"m.direct"}}`, mxerr.BadJSON, "account_data.types"},
		{"room id without sigil", `{"room":{"rooms":["abc:x"]}}`, mxerr.BadJSON, "room.rooms"},
		{"sender without sigil", `{"room":{"state":{"senders":["bob"]}}}`, mxerr.BadJSON, "room.state.senders"},
		{"unknown event_format", `{"event_format":"raw"}`, mxerr.BadJSON, "event_format"},
		{"include_leave not a boolean", `{"room":{"include_leave":"yes"}}`, mxerr.BadJSON, "room.include_leave"},
		{"empty event field path", `{"event_fields":[""]}`, mxerr.BadJSON, "event_fields"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseFilter([]byte(c.in))
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %s", err, c.want.Code)
			}
			if !strings.Contains(err.Error(), c.field) {
				t.Errorf("%q does not name the field %q", err.Error(), c.field)
			}
		})
	}
}

func TestParseFilterKeepsAbsentAndEmptyApart(t *testing.T) {
	f, err := ParseFilter([]byte(`{"room":{"include_leave":true,"timeline":{"limit":3,"types":[]},"state":{"lazy_load_members":true,"include_redundant_members":true}}}`))
	if err != nil {
		t.Fatal(err)
	}
	tl := f.TimelineFilter()
	if tl.Types == nil || len(tl.Types) != 0 || tl.NotTypes != nil {
		t.Errorf("types %#v not_types %#v: an empty list and an absent one differ", tl.Types, tl.NotTypes)
	}
	if f.TimelineLimit() != 3 || !f.IncludeLeave() {
		t.Errorf("limit %d include_leave %v", f.TimelineLimit(), f.IncludeLeave())
	}
	if lazy, redundant := f.LazyLoadMembers(); !lazy || !redundant {
		t.Errorf("lazy %v redundant %v", lazy, redundant)
	}
	// An empty types list matches nothing.
	if tl.Matches(&Event{Type: "m.room.message", Sender: "@a:x"}) {
		t.Error("types [] must match no event")
	}
}

func TestFilterDefaults(t *testing.T) {
	var none *Filter
	if none.TimelineLimit() != DefaultTimelineLimit || none.IncludeLeave() {
		t.Error("a nil filter takes the defaults")
	}
	huge := MaxTimelineLimit * 10
	f := &Filter{Room: &RoomFilter{Timeline: &RoomEventFilter{EventFilter: EventFilter{Limit: &huge}}}}
	if f.TimelineLimit() != MaxTimelineLimit {
		t.Errorf("limit %d, want the maximum %d", f.TimelineLimit(), MaxTimelineLimit)
	}
}

func TestFilterRoundTripsThroughJSON(t *testing.T) {
	in := `{"event_fields":["type","content.body"],"event_format":"client","room":{"not_rooms":["!b:x"],"timeline":{"limit":5,"not_senders":["@spam:x"],"contains_url":false}}}`
	f, err := ParseFilter([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	_ = json.Unmarshal([]byte(in), &a)
	_ = json.Unmarshal(out, &b)
	if ja, jb := mustJSON(t, a), mustJSON(t, b); ja != jb {
		t.Errorf("re-encoded filter differs:\n in %s\nout %s", ja, jb)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{`{}`, `{"room":{"timeline":{"limit":1}}}`, `{"presence":{"types":["*"]}}`, `[`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		flt, err := ParseFilter(raw)
		if err != nil {
			if _, ok := mxerr.As(err); !ok {
				t.Fatalf("error %v is not a Matrix error", err)
			}
			return
		}
		if l := flt.TimelineLimit(); l <= 0 || l > MaxTimelineLimit {
			t.Fatalf("accepted filter has timeline limit %d", l)
		}
	})
}

// An empty allow-list (types, senders, rooms) matches nothing, an absent
// one everything: a filter stored and read back (POST /filter, then /sync
// with its id) must keep the difference. The bench tool's
// `"presence": {"types": []}` came back absent, so every sync of a
// 500-member room computed the presence of 500 users it did not want.
func TestFilterKeepsEmptyListsThroughStorage(t *testing.T) {
	in := `{"presence":{"types":[]},"room":{"rooms":[],"timeline":{"senders":[],"rooms":[]},"ephemeral":{"types":[]}}}`
	f, err := ParseFilter([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	def, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	var back Filter
	if err := json.Unmarshal(def, &back); err != nil {
		t.Fatal(err)
	}
	if back.PresenceFilter().Matches("m.presence", "@a:x") {
		t.Errorf("stored %s: presence types [] matches m.presence", def)
	}
	if back.RoomFilterOf().RoomAllowed("!r:x") {
		t.Errorf("stored %s: rooms [] lets a room through", def)
	}
	if tl := back.TimelineFilter(); tl.Matches(&Event{Type: "m.room.message", Sender: "@a:x", RoomID: "!r:x"}) {
		t.Errorf("stored %s: timeline senders [] matches a message", def)
	}
	// And absent lists stay absent (nil), matching everything.
	def, _ = json.Marshal(&Filter{Presence: &EventFilter{}})
	if string(def) != `{"presence":{}}` {
		t.Errorf("absent lists encode as %s, want {\"presence\":{}}", def)
	}
}

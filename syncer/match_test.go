package syncer

import (
	"encoding/json"
	"testing"

	"github.com/parleyhq/parley/id"
)

func TestGlobMatch(t *testing.T) {
	cases := []struct {
		pattern, s string
		want       bool
	}{
		{"m.room.message", "m.room.message", true},
		{"m.room.message", "m.room.messages", false},
		{"m.room.*", "m.room.member", true},
		{"m.room.*", "m.room.", true},
		{"m.room.*", "m.roo", false},
		{"*", "", true},
		{"*.member", "m.room.member", true},
		{"m.*.member", "m.room.member", true},
		{"m.*.member", "m.member", false},
		{"a*b*c", "abc", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "acb", false},
		{"a*a", "a", false},
		{"m.room.message", "m.room.*", false},
	}
	for _, c := range cases {
		t.Run(c.pattern+" vs "+c.s, func(t *testing.T) {
			if got := globMatch(c.pattern, c.s); got != c.want {
				t.Errorf("globMatch(%q, %q) = %v", c.pattern, c.s, got)
			}
		})
	}
}

func TestEventFilterMatches(t *testing.T) {
	msg := &Event{Type: "m.room.message", Sender: "@alice:x", RoomID: "!a:x", Content: json.RawMessage(`{"body":"hi"}`)}
	img := &Event{Type: "m.room.message", Sender: "@bob:x", RoomID: "!b:x", Content: json.RawMessage(`{"url":"mxc://x/y"}`)}
	member := &Event{Type: "m.room.member", Sender: "@bob:x", RoomID: "!a:x", Content: json.RawMessage(`{}`)}
	yes, no := true, false
	cases := []struct {
		name   string
		filter *RoomEventFilter
		ev     *Event
		want   bool
	}{
		{"nil filter matches", nil, msg, true},
		{"empty filter matches", &RoomEventFilter{}, msg, true},
		{"types wildcard", &RoomEventFilter{EventFilter: EventFilter{Types: []string{"m.room.*"}}}, member, true},
		{"types miss", &RoomEventFilter{EventFilter: EventFilter{Types: []string{"m.room.member"}}}, msg, false},
		{"not_types wins over types", &RoomEventFilter{EventFilter: EventFilter{Types: []string{"*"}, NotTypes: []string{"m.room.mem*"}}}, member, false},
		{"senders", &RoomEventFilter{EventFilter: EventFilter{Senders: []string{"@alice:x"}}}, img, false},
		{"not_senders wins over senders", &RoomEventFilter{EventFilter: EventFilter{Senders: []string{"@alice:x"}, NotSenders: []string{"@alice:x"}}}, msg, false},
		{"rooms", &RoomEventFilter{Rooms: []string{"!a:x"}}, img, false},
		{"not_rooms wins over rooms", &RoomEventFilter{Rooms: []string{"!a:x"}, NotRooms: []string{"!a:x"}}, msg, false},
		{"contains_url true keeps urls", &RoomEventFilter{ContainsURL: &yes}, img, true},
		{"contains_url true drops others", &RoomEventFilter{ContainsURL: &yes}, msg, false},
		{"contains_url false drops urls", &RoomEventFilter{ContainsURL: &no}, img, false},
		{"contains_url false keeps others", &RoomEventFilter{ContainsURL: &no}, msg, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.filter.Matches(c.ev); got != c.want {
				t.Errorf("Matches = %v, want %v", got, c.want)
			}
		})
	}
}

func TestRoomFilterAllowed(t *testing.T) {
	cases := []struct {
		name   string
		filter *RoomFilter
		room   id.RoomID
		want   bool
	}{
		{"nil", nil, "!a:x", true},
		{"absent lists", &RoomFilter{}, "!a:x", true},
		{"listed", &RoomFilter{Rooms: []string{"!a:x"}}, "!a:x", true},
		{"not listed", &RoomFilter{Rooms: []string{"!a:x"}}, "!b:x", false},
		{"empty list excludes all", &RoomFilter{Rooms: []string{}}, "!a:x", false},
		{"excluded", &RoomFilter{NotRooms: []string{"!a:x"}}, "!a:x", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.filter.RoomAllowed(c.room); got != c.want {
				t.Errorf("RoomAllowed = %v", got)
			}
		})
	}
}

func TestProjectFields(t *testing.T) {
	ev := json.RawMessage(`{"type":"m.room.message","sender":"@a:x","content":{"body":"hi","m.relates_to":{"rel_type":"m.thread"},"a.b":1},"unsigned":{"age":3}}`)
	cases := []struct {
		name   string
		fields []string
		want   string
	}{
		{"no fields keeps all", nil, string(ev)},
		{"top level", []string{"type", "sender"}, `{"sender":"@a:x","type":"m.room.message"}`},
		{"nested", []string{"content.body"}, `{"content":{"body":"hi"}}`},
		{"two nested merge", []string{"content.body", "content.m\\.relates_to.rel_type"}, `{"content":{"body":"hi","m.relates_to":{"rel_type":"m.thread"}}}`},
		{"escaped dot", []string{"content.a\\.b"}, `{"content":{"a.b":1}}`},
		{"absent path", []string{"content.nope", "nope"}, `{}`},
		{"into a non-object", []string{"type.x"}, `{}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ProjectFields(ev, c.fields)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != c.want {
				t.Errorf("got %s, want %s", got, c.want)
			}
		})
	}
}

func TestSplitFieldPath(t *testing.T) {
	got := splitFieldPath(`content.m\.relates_to.a\\b`)
	want := []string{"content", "m.relates_to", `a\b`}
	if len(got) != len(want) {
		t.Fatalf("got %q", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("part %d: %q, want %q", i, got[i], want[i])
		}
	}
}

package event

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/parleyhq/parley/rooms/canonicaljson"
	"github.com/parleyhq/parley/rooms/roomversion"
)

func TestBuildRejects(t *testing.T) {
	kr := newKeyring(t, "a.example")
	base := Proto{Sender: "@alice:a.example", Type: "m.room.message", RoomID: "!r:a.example", Depth: 1, OriginServerTS: 1,
		Content: json.RawMessage(`{"body":"x"}`)}
	tests := []struct {
		name   string
		v      string
		modify func(*Proto)
		want   error
	}{
		{"top-level redacts from v11", "11", func(p *Proto) { p.Type = "m.room.redaction"; p.Redacts = "$" + hashID }, ErrInvalidEvent},
		{"float content in v6+", "10", func(p *Proto) { p.Content = json.RawMessage(`{"n":0.5}`) }, canonicaljson.ErrFloat},
		{"content not JSON", "10", func(p *Proto) { p.Content = json.RawMessage(`{`) }, canonicaljson.ErrSyntax},
		{"content not an object", "10", func(p *Proto) { p.Content = json.RawMessage(`[]`) }, ErrInvalidEvent},
		{"bad sender", "10", func(p *Proto) { p.Sender = "alice" }, ErrInvalidEvent},
		{"missing room id", "10", func(p *Proto) { p.RoomID = "" }, ErrInvalidEvent},
		{"prev event of another version's grammar", "10", func(p *Proto) { p.PrevEvents = Refs("$x:a.example") }, ErrInvalidEvent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := base
			tc.modify(&p)
			_, err := Build(roomversion.MustLookup(roomversion.ID(tc.v)), p, "a.example", kr.key("a.example"))
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("v1 event ids are fresh and on the server", func(t *testing.T) {
		v := roomversion.MustLookup("1")
		a, err := Build(v, base, "a.example", kr.key("a.example"))
		if err != nil {
			t.Fatal(err)
		}
		b, err := Build(v, base, "a.example", kr.key("a.example"))
		if err != nil {
			t.Fatal(err)
		}
		if a.EventID() == b.EventID() || a.EventID().String()[len(a.EventID())-len(":a.example"):] != ":a.example" {
			t.Errorf("ids %s and %s", a.EventID(), b.EventID())
		}
	})
	t.Run("MarshalJSON is the raw bytes", func(t *testing.T) {
		e, err := Build(roomversion.MustLookup("10"), base, "a.example", kr.key("a.example"))
		if err != nil {
			t.Fatal(err)
		}
		out, err := json.Marshal(map[string]any{"pdu": e})
		if err != nil {
			t.Fatal(err)
		}
		if want := `{"pdu":` + string(e.Raw()) + `}`; string(out) != want {
			t.Errorf("got %s", out)
		}
	})
}

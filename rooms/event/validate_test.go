package event

import (
	"errors"
	"strings"
	"testing"

	"github.com/parleyhq/parley/rooms/canonicaljson"
	"github.com/parleyhq/parley/rooms/roomversion"
)

const (
	hashID    = "Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg" // URL-safe, 43 characters
	hashIDStd = "Rqnc+F+dvnEYJTyHq/iKxU2bZ1CI92+kuZq3a5lr5Zg"
)

// eventJSON is a valid message event of version v with the given top-level
// fields replaced (a value of "" removes the field).
func eventJSON(t *testing.T, v roomversion.Version, replace map[string]string) []byte {
	t.Helper()
	fields := map[string]string{
		"type": `"m.room.message"`, "sender": `"@a:a.example"`, "content": `{"body":"x"}`,
		"origin_server_ts": `1`, "depth": `2`, "hashes": `{"sha256":"x"}`, "signatures": `{}`,
		"room_id": `"!r:a.example"`, "prev_events": `["$` + hashID + `"]`, "auth_events": `[]`,
	}
	switch {
	case v.EventFormat == roomversion.FormatV1:
		fields["event_id"] = `"$e:a.example"`
		fields["prev_events"] = `[["$p:a.example",{"sha256":"x"}]]`
	case v.EventFormat == roomversion.FormatV3:
		fields["prev_events"] = `["$` + hashIDStd + `"]`
	}
	if v.CreateEventDefinesRoomID {
		fields["room_id"] = `"!` + hashID + `"`
	}
	for k, val := range replace {
		if val == "" {
			delete(fields, k)
		} else {
			fields[k] = val
		}
	}
	var b strings.Builder
	b.WriteString("{")
	first := true
	for k, val := range fields {
		if !first {
			b.WriteString(",")
		}
		first = false
		b.WriteString(`"` + k + `":` + val)
	}
	b.WriteString("}")
	return []byte(b.String())
}

func TestParseValid(t *testing.T) {
	for _, v := range roomversion.All() {
		t.Run("v"+string(v.ID), func(t *testing.T) {
			mustParse(t, v, eventJSON(t, v, nil))
		})
	}
}

func TestParseRejects(t *testing.T) {
	v1 := roomversion.MustLookup("1")
	v3 := roomversion.MustLookup("3")
	v5 := roomversion.MustLookup("5")
	v10 := roomversion.MustLookup("10")
	v11 := roomversion.MustLookup("11")
	v12 := roomversion.MustLookup("12")
	long := strings.Repeat("x", 256)
	tests := []struct {
		name    string
		v       roomversion.Version
		replace map[string]string
		want    error
	}{
		{"missing type", v10, map[string]string{"type": ""}, ErrInvalidEvent},
		{"missing sender", v10, map[string]string{"sender": ""}, ErrInvalidEvent},
		{"missing content", v10, map[string]string{"content": ""}, ErrInvalidEvent},
		{"content not an object", v10, map[string]string{"content": `[]`}, ErrInvalidEvent},
		{"missing depth", v10, map[string]string{"depth": ""}, ErrInvalidEvent},
		{"negative depth", v10, map[string]string{"depth": "-1"}, ErrInvalidEvent},
		{"missing hashes", v10, map[string]string{"hashes": ""}, ErrInvalidEvent},
		{"missing signatures", v10, map[string]string{"signatures": ""}, ErrInvalidEvent},
		{"missing prev_events", v10, map[string]string{"prev_events": ""}, ErrInvalidEvent},
		{"missing auth_events", v10, map[string]string{"auth_events": ""}, ErrInvalidEvent},
		{"missing room_id", v10, map[string]string{"room_id": ""}, ErrInvalidEvent},
		{"timestamp a string", v10, map[string]string{"origin_server_ts": `"1"`}, ErrInvalidEvent},
		{"unsigned not an object", v10, map[string]string{"unsigned": `1`}, ErrInvalidEvent},
		{"type too long", v10, map[string]string{"type": `"` + long + `"`}, ErrInvalidEvent},
		{"state key too long", v10, map[string]string{"state_key": `"` + long + `"`}, ErrInvalidEvent},
		{"sender too long", v10, map[string]string{"sender": `"@` + long + `:a"`}, ErrInvalidEvent},
		{"sender not a user id", v10, map[string]string{"sender": `"alice"`}, ErrInvalidEvent},
		{"room id without server before v12", v10, map[string]string{"room_id": `"!r"`}, ErrInvalidEvent},
		{"room id with server in v12", v12, map[string]string{"room_id": `"!r:a.example"`}, ErrInvalidEvent},
		{"v12 create with room id", v12, map[string]string{"type": `"m.room.create"`, "state_key": `""`}, ErrInvalidEvent},
		{"v1 event id missing", v1, map[string]string{"event_id": ""}, ErrInvalidEvent},
		{"v1 event id without server", v1, map[string]string{"event_id": `"$abc"`}, ErrInvalidEvent},
		{"v1 prev event not a pair", v1, map[string]string{"prev_events": `["$p:a.example"]`}, ErrInvalidEvent},
		{"v3 url-safe prev event id", v3, map[string]string{"prev_events": `["$` + hashID + `"]`}, ErrInvalidEvent},
		{"v4+ standard base64 prev event id", v10, map[string]string{"prev_events": `["$` + hashIDStd + `"]`}, ErrInvalidEvent},
		{"v4+ v1-style prev event id", v10, map[string]string{"prev_events": `["$p:a.example"]`}, ErrInvalidEvent},
		{"v4+ pair prev events", v10, map[string]string{"prev_events": `[["$` + hashID + `",{}]]`}, ErrInvalidEvent},
		{"too many auth events", v10, map[string]string{"auth_events": `[` + strings.TrimSuffix(strings.Repeat(`"$`+hashID+`",`, 11), ",") + `]`}, ErrInvalidEvent},
		{"too many prev events", v10, map[string]string{"prev_events": `[` + strings.TrimSuffix(strings.Repeat(`"$`+hashID+`",`, 21), ",") + `]`}, ErrInvalidEvent},
		{"redacts not an event id", v10, map[string]string{"type": `"m.room.redaction"`, "redacts": `"x"`}, ErrInvalidEvent},
		{"v11 content redacts not an event id", v11, map[string]string{"type": `"m.room.redaction"`, "content": `{"redacts":5}`}, ErrInvalidEvent},
		{"float in v6+", v10, map[string]string{"content": `{"n":1.5}`}, canonicaljson.ErrFloat},
		{"big integer in v6+", v10, map[string]string{"content": `{"n":9007199254740992}`}, canonicaljson.ErrIntegerRange},
		{"duplicate key in v6+", v10, map[string]string{"content": `{"n":1,"n":2}`}, canonicaljson.ErrDuplicateKey},
		{"oversize", v10, map[string]string{"content": `{"body":"` + strings.Repeat("a", MaxSize) + `"}`}, ErrTooLarge},
		{"not an object", v10, nil, ErrInvalidEvent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := eventJSON(t, tc.v, tc.replace)
			if tc.name == "not an object" {
				raw = []byte(`[]`)
			}
			_, err := Parse(tc.v, raw)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	// Room versions before 6 must accept what strict canonical JSON forbids.
	for _, content := range []string{`{"n":1.5}`, `{"n":9007199254740993}`, `{"n":1,"n":2}`} {
		t.Run("v5 accepts "+content, func(t *testing.T) {
			mustParse(t, v5, eventJSON(t, v5, map[string]string{"content": content}))
		})
	}
	t.Run("size counts canonical bytes, not whitespace", func(t *testing.T) {
		raw := eventJSON(t, v10, map[string]string{"content": `{"body":"` + strings.Repeat("a", MaxSize-400) + `"}`})
		padded := append([]byte(strings.Repeat(" ", 1000)), raw...)
		mustParse(t, v10, padded)
	})
}

func TestRedactsAccessor(t *testing.T) {
	target := `"$` + hashID + `"`
	tests := []struct {
		name    string
		v       string
		replace map[string]string
		want    string
	}{
		{"top level before v11", "10", map[string]string{"type": `"m.room.redaction"`, "redacts": target}, "$" + hashID},
		{"content ignored before v11", "10", map[string]string{"type": `"m.room.redaction"`, "content": `{"redacts":` + target + `}`}, ""},
		{"content from v11", "11", map[string]string{"type": `"m.room.redaction"`, "content": `{"redacts":` + target + `}`}, "$" + hashID},
		{"top level ignored from v11", "11", map[string]string{"type": `"m.room.redaction"`, "redacts": target}, ""},
		{"not a redaction", "10", map[string]string{"redacts": target}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := roomversion.MustLookup(roomversion.ID(tc.v))
			e := mustParse(t, v, eventJSON(t, v, tc.replace))
			if got := string(e.Redacts()); got != tc.want {
				t.Errorf("Redacts() = %q, want %q", got, tc.want)
			}
		})
	}
}

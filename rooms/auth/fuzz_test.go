package auth_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/roomversion"
)

// FuzzPowerLevelsContent: parsing never panics, and whatever parses
// re-encodes to a content that parses to the same levels.
func FuzzPowerLevelsContent(f *testing.F) {
	for _, seed := range []string{
		`{}`,
		`{"ban":50,"kick":"50","redact":50.5,"users":{"@a:b.c":100},"events":{"m.room.name":"x"}}`,
		`{"users":{"@a:b.c":" +007 "},"notifications":{"room":1e2}}`,
		`{"users":{"bad":1}}`,
		`{"events":[1,2],"state_default":null,"BAN":100}`,
		`{"users":{"@a:b.c":1e400}}`,
		`{"a":{"b":[{"c":"\u0000\""}]},"invite":-9223372036854775808}`,
		`not json`,
	} {
		for v := range uint8(12) {
			f.Add([]byte(seed), v)
		}
	}
	versions := roomversion.All()
	f.Fuzz(func(t *testing.T, data []byte, v uint8) {
		rv := versions[int(v)%len(versions)]
		p, err := auth.ParsePowerLevels(rv, json.RawMessage(data))
		if err != nil || !utf8.Valid(data) || !json.Valid(data) {
			return
		}
		encoded, err := json.Marshal(p)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		again, err := auth.ParsePowerLevels(rv, encoded)
		if err != nil {
			t.Fatalf("re-encoded content %s does not parse: %v", encoded, err)
		}
		if !reflect.DeepEqual(p, again) {
			t.Fatalf("round trip changed the levels:\n%+v\n%+v\n(%s)", p, again, encoded)
		}
	})
}

// FuzzMemberContent compares the package's JSON walker with encoding/json:
// for any valid JSON object, ParseMember finds the same membership (keys
// are case-sensitive and the last duplicate wins in both).
func FuzzMemberContent(f *testing.F) {
	for _, seed := range []string{
		`{"membership":"join"}`,
		`{"membership":"jo\u0069n","Membership":"ban"}`,
		`{"membership":"leave","membership":"ban"}`,
		`{"a":[{"membership":"x"}],"membership":5}`,
		`{"m\u0065mbership":"invite","x":{"y":[1,-2.5e3,true,null,"\""]}}`,
		` { } `,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := auth.ParseMember(json.RawMessage(data))
		if !json.Valid(data) || !utf8.Valid(data) {
			return
		}
		var obj map[string]any
		if json.Unmarshal(data, &obj) != nil || obj == nil {
			if err == nil {
				t.Fatalf("ParseMember accepted %s, which is not an object", data)
			}
			return
		}
		want, isString := obj["membership"].(string)
		if !isString {
			if err == nil {
				t.Fatalf("ParseMember found membership %q in %s", m.Membership, data)
			}
			return
		}
		if err != nil || string(m.Membership) != want {
			t.Fatalf("ParseMember(%s) = %v, %v; want %q", data, m, err, want)
		}
	})
}

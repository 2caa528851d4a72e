package event

import (
	"testing"

	"github.com/parleyhq/parley/rooms/canonicaljson"
	"github.com/parleyhq/parley/rooms/roomversion"
)

// redactionCase is one event type's content and what each rule set keeps
// of it (content/rooms/fragments/v1-, v6-, v9-, v11-redactions.md and
// rooms/v8.md).
type redactionCase struct {
	name, eventType, content string
	want                     map[roomversion.RedactionRules]string
}

var redactionCases = []redactionCase{
	{"member", "m.room.member",
		`{"membership":"join","displayname":"A","join_authorised_via_users_server":"@b:b","third_party_invite":{"display_name":"x","signed":{"mxid":"@a:a","token":"t"}}}`,
		map[roomversion.RedactionRules]string{
			roomversion.RedactionV1:  `{"membership":"join"}`,
			roomversion.RedactionV6:  `{"membership":"join"}`,
			roomversion.RedactionV8:  `{"membership":"join"}`,
			roomversion.RedactionV9:  `{"join_authorised_via_users_server":"@b:b","membership":"join"}`,
			roomversion.RedactionV11: `{"join_authorised_via_users_server":"@b:b","membership":"join","third_party_invite":{"signed":{"mxid":"@a:a","token":"t"}}}`,
		}},
	{"member third party invite without signed", "m.room.member",
		`{"membership":"invite","third_party_invite":{"display_name":"x"}}`,
		map[roomversion.RedactionRules]string{
			roomversion.RedactionV9:  `{"membership":"invite"}`,
			roomversion.RedactionV11: `{"membership":"invite"}`,
		}},
	{"create", "m.room.create",
		`{"creator":"@a:a","room_version":"1","m.federate":false,"predecessor":{"room_id":"!o:a"}}`,
		map[roomversion.RedactionRules]string{
			roomversion.RedactionV1:  `{"creator":"@a:a"}`,
			roomversion.RedactionV6:  `{"creator":"@a:a"}`,
			roomversion.RedactionV8:  `{"creator":"@a:a"}`,
			roomversion.RedactionV9:  `{"creator":"@a:a"}`,
			roomversion.RedactionV11: `{"creator":"@a:a","m.federate":false,"predecessor":{"room_id":"!o:a"},"room_version":"1"}`,
		}},
	{"join rules", "m.room.join_rules",
		`{"join_rule":"restricted","allow":[{"type":"m.room_membership","room_id":"!r:a"}],"other":1}`,
		map[roomversion.RedactionRules]string{
			roomversion.RedactionV1:  `{"join_rule":"restricted"}`,
			roomversion.RedactionV6:  `{"join_rule":"restricted"}`,
			roomversion.RedactionV8:  `{"allow":[{"room_id":"!r:a","type":"m.room_membership"}],"join_rule":"restricted"}`,
			roomversion.RedactionV9:  `{"allow":[{"room_id":"!r:a","type":"m.room_membership"}],"join_rule":"restricted"}`,
			roomversion.RedactionV11: `{"allow":[{"room_id":"!r:a","type":"m.room_membership"}],"join_rule":"restricted"}`,
		}},
	{"power levels", "m.room.power_levels",
		`{"ban":50,"events":{"m.x":1},"events_default":0,"invite":0,"kick":50,"notifications":{"room":50},"redact":50,"state_default":50,"users":{"@a:a":100},"users_default":0}`,
		map[roomversion.RedactionRules]string{
			roomversion.RedactionV1:  `{"ban":50,"events":{"m.x":1},"events_default":0,"kick":50,"redact":50,"state_default":50,"users":{"@a:a":100},"users_default":0}`,
			roomversion.RedactionV6:  `{"ban":50,"events":{"m.x":1},"events_default":0,"kick":50,"redact":50,"state_default":50,"users":{"@a:a":100},"users_default":0}`,
			roomversion.RedactionV9:  `{"ban":50,"events":{"m.x":1},"events_default":0,"kick":50,"redact":50,"state_default":50,"users":{"@a:a":100},"users_default":0}`,
			roomversion.RedactionV11: `{"ban":50,"events":{"m.x":1},"events_default":0,"invite":0,"kick":50,"redact":50,"state_default":50,"users":{"@a:a":100},"users_default":0}`,
		}},
	{"aliases", "m.room.aliases", `{"aliases":["#a:a"]}`,
		map[roomversion.RedactionRules]string{
			roomversion.RedactionV1:  `{"aliases":["#a:a"]}`,
			roomversion.RedactionV6:  `{}`,
			roomversion.RedactionV11: `{}`,
		}},
	{"history visibility", "m.room.history_visibility", `{"history_visibility":"shared","x":1}`,
		map[roomversion.RedactionRules]string{
			roomversion.RedactionV1:  `{"history_visibility":"shared"}`,
			roomversion.RedactionV11: `{"history_visibility":"shared"}`,
		}},
	{"redaction", "m.room.redaction", `{"redacts":"$e","reason":"spam"}`,
		map[roomversion.RedactionRules]string{
			roomversion.RedactionV1:  `{}`,
			roomversion.RedactionV9:  `{}`,
			roomversion.RedactionV11: `{"redacts":"$e"}`,
		}},
	{"message", "m.room.message", `{"body":"secret","msgtype":"m.text"}`,
		map[roomversion.RedactionRules]string{
			roomversion.RedactionV1:  `{}`,
			roomversion.RedactionV11: `{}`,
		}},
}

func TestRedactContent(t *testing.T) {
	for _, tc := range redactionCases {
		for rules, want := range tc.want {
			t.Run(tc.name+"/"+rulesName(rules), func(t *testing.T) {
				ev := mustValue(t, `{"type":"`+tc.eventType+`","content":`+tc.content+`}`)
				red := Redact(rules, ev)
				c, _ := red.Get("content")
				if got := string(canonicaljson.Encode(c)); got != want {
					t.Errorf("got  %s\nwant %s", got, want)
				}
			})
		}
	}
}

func rulesName(r roomversion.RedactionRules) string {
	return map[roomversion.RedactionRules]string{
		roomversion.RedactionV1: "v1", roomversion.RedactionV6: "v6", roomversion.RedactionV8: "v8",
		roomversion.RedactionV9: "v9", roomversion.RedactionV11: "v11",
	}[r]
}

func TestRedactTopLevel(t *testing.T) {
	ev := mustValue(t, `{"event_id":"$e:a","type":"m.room.redaction","room_id":"!r:a","sender":"@a:a","state_key":"",
		"content":{},"hashes":{"sha256":"x"},"signatures":{"a":{}},"depth":1,"prev_events":[],"prev_state":[],
		"auth_events":[],"origin":"a","origin_server_ts":1,"membership":"join","unsigned":{"age_ts":1},
		"redacts":"$x:a","age_ts":5,"extra":true}`)
	tests := []struct {
		rules roomversion.RedactionRules
		want  string
	}{
		{roomversion.RedactionV1, `{"auth_events":[],"content":{},"depth":1,"event_id":"$e:a","hashes":{"sha256":"x"},"membership":"join","origin":"a","origin_server_ts":1,"prev_events":[],"prev_state":[],"room_id":"!r:a","sender":"@a:a","signatures":{"a":{}},"state_key":"","type":"m.room.redaction"}`},
		{roomversion.RedactionV9, `{"auth_events":[],"content":{},"depth":1,"event_id":"$e:a","hashes":{"sha256":"x"},"membership":"join","origin":"a","origin_server_ts":1,"prev_events":[],"prev_state":[],"room_id":"!r:a","sender":"@a:a","signatures":{"a":{}},"state_key":"","type":"m.room.redaction"}`},
		{roomversion.RedactionV11, `{"auth_events":[],"content":{},"depth":1,"event_id":"$e:a","hashes":{"sha256":"x"},"origin_server_ts":1,"prev_events":[],"room_id":"!r:a","sender":"@a:a","signatures":{"a":{}},"state_key":"","type":"m.room.redaction"}`},
	}
	for _, tc := range tests {
		t.Run(rulesName(tc.rules), func(t *testing.T) {
			if got := string(canonicaljson.Encode(Redact(tc.rules, ev))); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// A redacted event keeps its id and its signatures still verify.
func TestRedactedEventKeepsIDAndSignature(t *testing.T) {
	for _, v := range roomversion.All() {
		t.Run("v"+string(v.ID), func(t *testing.T) {
			kr := newKeyring(t, "a.example")
			b := &builder{t: t, v: v, server: "a.example", key: kr.key("a.example"), ts: 1}
			create, join := b.createRoom("@alice:a.example")
			msg := b.build("@alice:a.example", "m.room.message", nil, `{"body":"secret"}`, []*Event{join}, []*Event{create, join})
			red := msg.Redacted()
			if red.EventID() != msg.EventID() || red.ReferenceHash() != msg.ReferenceHash() {
				t.Errorf("redaction changed the id: %s → %s", msg.EventID(), red.EventID())
			}
			if got := string(red.Content()); got != `{}` {
				t.Errorf("redacted content %s", got)
			}
			// The redacted copy fails the hash check, which is how a
			// receiver learns it has been redacted; the signature holds.
			if _, redacted, err := VerifyOrRedact(t.Context(), red, kr.lookup); err != nil || !redacted {
				t.Errorf("VerifyOrRedact(redacted) = %v, %v", redacted, err)
			}
		})
	}
}

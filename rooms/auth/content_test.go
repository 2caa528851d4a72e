package auth_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/auth"
	"github.com/parleyhq/parley/rooms/auth/authtest"
)

func TestPowerLevelsDefaults(t *testing.T) {
	rv := authtest.Version("10")
	type levels struct{ ban, kick, redact, invite, users, events, state, notif, msg, stateEv int64 }
	read := func(p *auth.PowerLevels) levels {
		return levels{p.Ban, p.Kick, p.Redact, p.Invite, p.UsersDefault, p.EventsDefault, p.StateDefault,
			p.NotificationLevel("room"), p.EventLevel("m.room.message", false), p.EventLevel("m.room.name", true)}
	}
	empty, err := auth.ParsePowerLevels(rv, json.RawMessage(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	set, err := auth.ParsePowerLevels(rv, json.RawMessage(`{"ban":1,"kick":2,"redact":3,"invite":4,"users_default":5,
		"events_default":6,"state_default":7,"notifications":{"room":8},"events":{"m.room.message":9,"m.room.name":10}}`))
	if err != nil {
		t.Fatal(err)
	}
	spec := levels{ban: 50, kick: 50, redact: 50, invite: 0, users: 0, events: 0, state: 50, notif: 50, msg: 0, stateEv: 50}
	cases := []struct {
		name string
		got  *auth.PowerLevels
		want levels
	}{
		{"no power levels event gives the spec's defaults", auth.NoPowerLevels(), spec},
		{"an empty content gives the same defaults", empty, spec},
		{"every key set is read", set, levels{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := read(tc.got); got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	t.Run("creator has 100 without a power levels event before v12", func(t *testing.T) {
		p := auth.NoPowerLevels()
		p.SetCreators(authtest.Version("11"), []id.UserID{alice})
		if p.UserLevel(alice) != 100 || p.UserLevel(bob) != 0 {
			t.Fatalf("levels %d %d, want 100 0", p.UserLevel(alice), p.UserLevel(bob))
		}
	})
	t.Run("creator has no special level once power levels exist before v12", func(t *testing.T) {
		p := empty
		p.SetCreators(authtest.Version("11"), []id.UserID{alice})
		if p.UserLevel(alice) != 0 {
			t.Fatalf("level %d, want users_default 0", p.UserLevel(alice))
		}
	})
}

func TestPowerLevelValueFormats(t *testing.T) {
	cases := []struct {
		name    string
		version string
		value   string
		want    int64
		ok      bool
	}{
		{"integer", "10", `50`, 50, true},
		{"negative integer", "10", `-5`, -5, true},
		{"string rejected from v10", "10", `"50"`, 0, false},
		{"float rejected from v10", "10", `50.0`, 0, false},
		{"string with leading zeros", "9", `"000100"`, 100, true},
		{"string with a plus sign", "9", `"+100"`, 100, true},
		{"string with a minus sign and whitespace", "9", `" -100 "`, -100, true},
		{"string with a float", "9", `"1.5"`, 0, false},
		{"string with two signs", "9", `"+-1"`, 0, false},
		{"float rejected in v6-9", "7", `50.5`, 0, false},
		{"float truncated in v1-5", "5", `50.57`, 50, true},
		{"float with exponent in v1-5", "3", `5.114698E4`, 51146, true},
		{"negative float truncated towards zero in v1-5", "1", `-1.9`, -1, true},
		{"boolean is never a level", "1", `true`, 0, false},
	}
	for _, tc := range cases {
		t.Run("v"+tc.version+"/"+tc.name, func(t *testing.T) {
			content := json.RawMessage(`{"users":{"@bob:b.test":` + tc.value + `}}`)
			p, err := auth.ParsePowerLevels(authtest.Version(tc.version), content)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if tc.ok && p.UserLevel(bob) != tc.want {
				t.Fatalf("level %d, want %d", p.UserLevel(bob), tc.want)
			}
		})
	}
}

func TestMemberAndJoinRulesContent(t *testing.T) {
	m, err := auth.ParseMember(json.RawMessage(`{"membership":"join","displayname":"B\u00f6b","join_authorised_via_users_server":"@alice:a.test","Membership":"ban"}`))
	if err != nil {
		t.Fatal(err)
	}
	want := &auth.Member{Membership: auth.Join, DisplayName: "Böb", JoinAuthorisedViaUsersServer: alice, HasJoinAuthorised: true}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("ParseMember = %+v, want %+v (keys are case-sensitive)", m, want)
	}
	if _, err := auth.ParseMember(json.RawMessage(`{"membership":5}`)); err == nil {
		t.Error("a non-string membership parsed")
	}
	jr, err := auth.ParseJoinRules(json.RawMessage(`{"join_rule":"restricted","allow":[{"type":"m.room_membership","room_id":"!a:a.test"},"junk",{"type":""}]}`))
	if err != nil {
		t.Fatal(err)
	}
	wantJR := &auth.JoinRules{JoinRule: auth.JoinRestricted, Allow: []auth.AllowRule{{Type: "m.room_membership", RoomID: "!a:a.test"}}}
	if !reflect.DeepEqual(jr, wantJR) {
		t.Errorf("ParseJoinRules = %+v, want %+v", jr, wantJR)
	}
}

func TestCreateContent(t *testing.T) {
	ev := func(content string) *authtest.Event {
		return &authtest.Event{ID: "$c", EvType: auth.TypeCreate, Key: authtest.SK(""), From: alice, Body: json.RawMessage(content)}
	}
	cases := []struct {
		name    string
		version string
		content string
		want    auth.Create
	}{
		{"v10 reads creator, version, federate, type and predecessor", "10",
			`{"creator":"@carol:c.test","room_version":"10","m.federate":false,"type":"m.space","predecessor":{"room_id":"!old:a.test","event_id":"$t"}}`,
			auth.Create{Creator: carol, RoomVersion: "10", Federate: false, Type: "m.space",
				Predecessor: &auth.Predecessor{RoomID: "!old:a.test", EventID: "$t"}}},
		{"v11 creator is the sender", "11", `{"creator":"@carol:c.test","room_version":"11"}`,
			auth.Create{Creator: alice, RoomVersion: "11", Federate: true}},
		{"v12 reads additional_creators", "12", `{"room_version":"12","additional_creators":["@bob:b.test"]}`,
			auth.Create{Creator: alice, RoomVersion: "12", Federate: true, AdditionalCreators: []id.UserID{bob}}},
		{"missing room_version is 1", "1", `{"creator":"@alice:a.test"}`,
			auth.Create{Creator: alice, RoomVersion: "1", Federate: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := auth.ParseCreate(authtest.Version(tc.version), ev(tc.content))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tc.want) {
				t.Fatalf("got %+v, want %+v", *got, tc.want)
			}
		})
	}
}

package clientapi_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/parleyhq/parley/apptest"
)

func TestCreateRoomEveryVersion(t *testing.T) {
	s := apptest.Start(t)
	alice, token := s.Register(t, "alice", pw)
	for v := 1; v <= 12; v++ {
		t.Run(fmt.Sprintf("room version %d", v), func(t *testing.T) {
			room := mustCreateRoom(t, s, token, obj{"room_version": fmt.Sprint(v), "name": "v", "topic": "t"})
			if hasServer := strings.Contains(room, ":"); hasServer == (v == 12) {
				t.Fatalf("room id %s: a server part is wrong for version %d", room, v)
			}
			st := stateOf(t, s, token, room)
			create := st["m.room.create|"]
			if create == nil || create["content"].(map[string]any)["room_version"] != fmt.Sprint(v) {
				t.Fatalf("create event %v", create)
			}
			for _, key := range []string{"m.room.member|" + alice, "m.room.power_levels|", "m.room.join_rules|",
				"m.room.history_visibility|", "m.room.guest_access|", "m.room.name|", "m.room.topic|"} {
				if st[key] == nil {
					t.Errorf("no %s in state", key)
				}
			}
			if m := st["m.room.member|"+alice]["content"].(map[string]any)["membership"]; m != "join" {
				t.Errorf("creator's membership %v", m)
			}
			users := st["m.room.power_levels|"]["content"].(map[string]any)["users"].(map[string]any)
			if _, listed := users[alice]; listed == (v == 12) {
				t.Errorf("creator listed in power levels users = %v in version %d", listed, v)
			}
			mustSend(t, s, token, room, "m1", "hello")
		})
	}
	res := s.Do(t, http.MethodGet, v3+"/joined_rooms", token, nil)
	apptest.MustStatus(t, res, http.StatusOK)
	if n := len(res.Body["joined_rooms"].([]any)); n != 12 {
		t.Fatalf("%d joined rooms, want 12", n)
	}
}

func TestCreateRoomPresetsAndOptions(t *testing.T) {
	s := apptest.Start(t)
	alice, token := s.Register(t, "alice", pw)
	bob, _ := s.Register(t, "bob", pw)
	tests := []struct {
		name      string
		body      obj
		joinRule  string
		guest     string
		bobLevel  any
		bobMember any
	}{
		{"private_chat", obj{"preset": "private_chat", "invite": []string{bob}}, "invite", "can_join", nil, "invite"},
		{"public_chat", obj{"preset": "public_chat"}, "public", "forbidden", nil, nil},
		{"trusted_private_chat", obj{"preset": "trusted_private_chat", "invite": []string{bob}, "is_direct": true}, "invite", "can_join", float64(100), "invite"},
		{"visibility public implies public_chat", obj{"visibility": "public"}, "public", "forbidden", nil, nil},
		{"initial_state overrides the preset", obj{"preset": "public_chat", "initial_state": []obj{
			{"type": "m.room.join_rules", "content": obj{"join_rule": "invite"}}}}, "invite", "forbidden", nil, nil},
		{"initial_state power levels replace the defaults", obj{"initial_state": []obj{{"type": "m.room.power_levels",
			"content": obj{"users": obj{alice: 100, bob: 7}, "state_default": 50}}}}, "invite", "can_join", float64(7), nil},
		{"power level override", obj{"power_level_content_override": obj{"users": obj{alice: 100, bob: 42}}}, "invite", "can_join", float64(42), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			room := mustCreateRoom(t, s, token, tc.body)
			st := stateOf(t, s, token, room)
			content := func(key, field string) any {
				ev := st[key]
				if ev == nil {
					return nil
				}
				return ev["content"].(map[string]any)[field]
			}
			if got := content("m.room.join_rules|", "join_rule"); got != tc.joinRule {
				t.Errorf("join_rule %v, want %v", got, tc.joinRule)
			}
			if got := content("m.room.guest_access|", "guest_access"); got != tc.guest {
				t.Errorf("guest_access %v, want %v", got, tc.guest)
			}
			users, _ := content("m.room.power_levels|", "users").(map[string]any)
			if got := users[bob]; got != tc.bobLevel {
				t.Errorf("bob's power level %v, want %v", got, tc.bobLevel)
			}
			if got := content("m.room.member|"+bob, "membership"); got != tc.bobMember {
				t.Errorf("bob's membership %v, want %v", got, tc.bobMember)
			}
			if tc.body["is_direct"] == true && content("m.room.member|"+bob, "is_direct") != true {
				t.Errorf("invite lacks is_direct")
			}
		})
	}
}

func TestCreateRoomRefusals(t *testing.T) {
	s := apptest.Start(t)
	_, token := s.Register(t, "alice", pw)
	mustCreateRoom(t, s, token, obj{"room_alias_name": "taken"})
	tests := []struct {
		name    string
		body    any
		status  int
		errcode string
	}{
		{"unknown room version", obj{"room_version": "99"}, 400, "M_UNSUPPORTED_ROOM_VERSION"},
		{"alias in use", obj{"room_alias_name": "taken"}, 400, "M_ROOM_IN_USE"},
		{"bad alias localpart", obj{"room_alias_name": "a:b"}, 400, "M_INVALID_PARAM"},
		{"not JSON", "{", 400, "M_NOT_JSON"},
		{"creator cannot set the name it forbade itself", obj{
			"power_level_content_override": obj{"users": obj{}, "users_default": 0, "events": obj{"m.room.name": 100}},
			"name":                         "no"}, 400, "M_INVALID_ROOM_STATE"},
		{"bad preset", obj{"preset": "party"}, 400, "M_INVALID_PARAM"},
		{"bad invitee", obj{"invite": []string{"bob"}}, 400, "M_INVALID_PARAM"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := s.Do(t, http.MethodPost, v3+"/createRoom", token, tc.body)
			if res.Status != tc.status || res.Errcode() != tc.errcode {
				t.Fatalf("%d %s, want %d %s: %s", res.Status, res.Errcode(), tc.status, tc.errcode, res.Raw)
			}
		})
	}
	res := s.Do(t, http.MethodGet, v3+"/joined_rooms", token, nil)
	if n := len(res.Body["joined_rooms"].([]any)); n != 1 {
		t.Fatalf("refused creations left rooms behind: %d joined rooms", n)
	}
	if !slices.Contains([]int{http.StatusUnauthorized}, s.Do(t, http.MethodPost, v3+"/createRoom", "", obj{}).Status) {
		t.Fatal("createRoom without a token is not refused")
	}
}

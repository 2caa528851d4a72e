package clientapi_test

import (
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/config"
)

// post is a POST whose status and errcode the test checks.
func mustPost(t *testing.T, s *apptest.Server, path, token string, body any, status int, errcode string) apptest.Response {
	t.Helper()
	res := s.Do(t, http.MethodPost, path, token, body)
	if res.Status != status || res.Errcode() != errcode {
		t.Fatalf("POST %s: %d %s, want %d %s: %s", path, res.Status, res.Errcode(), status, errcode, res.Raw)
	}
	return res
}

func membershipOf(t *testing.T, s *apptest.Server, token, room, user string) any {
	t.Helper()
	st := stateOf(t, s, token, room)
	ev := st["m.room.member|"+user]
	if ev == nil {
		return nil
	}
	return ev["content"].(map[string]any)["membership"]
}

func TestMembershipLifecycle(t *testing.T) {
	s := apptest.Start(t)
	alice, aliceTok := s.Register(t, "alice", pw)
	bob, bobTok := s.Register(t, "bob", pw)
	carol, carolTok := s.Register(t, "carol", pw)
	room := mustCreateRoom(t, s, aliceTok, obj{"preset": "private_chat"})

	// Invite-only: bob cannot join uninvited; once invited he can.
	mustPost(t, s, roomPath(room, "/join"), bobTok, nil, 403, "M_FORBIDDEN")
	mustPost(t, s, roomPath(room, "/invite"), aliceTok, obj{"user_id": bob}, 200, "")
	if m := membershipOf(t, s, aliceTok, room, bob); m != "invite" {
		t.Fatalf("bob's membership %v after invite", m)
	}
	res := mustPost(t, s, v3+"/join/"+url.PathEscape(room), bobTok, obj{"reason": "hi"}, 200, "")
	if res.String("room_id") != room {
		t.Fatalf("join answered %s", res.Raw)
	}
	res = s.Do(t, http.MethodGet, roomPath(room, "/joined_members"), bobTok, nil)
	apptest.MustStatus(t, res, http.StatusOK)
	joined := res.Body["joined"].(map[string]any)
	if len(joined) != 2 || joined[alice] == nil || joined[bob] == nil {
		t.Fatalf("joined_members %s", res.Raw)
	}

	t.Run("power is needed to kick and ban", func(t *testing.T) {
		mustPost(t, s, roomPath(room, "/kick"), bobTok, obj{"user_id": alice}, 403, "M_FORBIDDEN")
		mustPost(t, s, roomPath(room, "/ban"), bobTok, obj{"user_id": alice}, 403, "M_FORBIDDEN")
		mustPost(t, s, roomPath(room, "/kick"), aliceTok, obj{"user_id": carol}, 403, "M_FORBIDDEN")
	})
	t.Run("kick, then ban, and a banned user cannot join", func(t *testing.T) {
		mustPost(t, s, roomPath(room, "/kick"), aliceTok, obj{"user_id": bob, "reason": "out"}, 200, "")
		if m := membershipOf(t, s, aliceTok, room, bob); m != "leave" {
			t.Fatalf("bob's membership %v after kick", m)
		}
		mustPost(t, s, roomPath(room, "/ban"), aliceTok, obj{"user_id": bob}, 200, "")
		mustPost(t, s, roomPath(room, "/invite"), aliceTok, obj{"user_id": bob}, 403, "M_FORBIDDEN")
		mustPost(t, s, roomPath(room, "/join"), bobTok, nil, 403, "M_FORBIDDEN")
		mustPost(t, s, roomPath(room, "/unban"), aliceTok, obj{"user_id": carol}, 403, "M_FORBIDDEN")
		mustPost(t, s, roomPath(room, "/unban"), aliceTok, obj{"user_id": bob}, 200, "")
		if m := membershipOf(t, s, aliceTok, room, bob); m != "leave" {
			t.Fatalf("bob's membership %v after unban", m)
		}
	})
	t.Run("leave and forget", func(t *testing.T) {
		mustPost(t, s, roomPath(room, "/invite"), aliceTok, obj{"user_id": carol}, 200, "")
		mustPost(t, s, roomPath(room, "/join"), carolTok, nil, 200, "")
		mustPost(t, s, roomPath(room, "/forget"), carolTok, nil, 400, "M_UNKNOWN")
		mustPost(t, s, roomPath(room, "/leave"), carolTok, nil, 200, "")
		res := s.Do(t, http.MethodGet, v3+"/joined_rooms", carolTok, nil)
		if len(res.Body["joined_rooms"].([]any)) != 0 {
			t.Fatalf("carol still in rooms: %s", res.Raw)
		}
		mustPost(t, s, roomPath(room, "/forget"), carolTok, nil, 200, "")
		// Leaving again is refused by the auth rules.
		mustPost(t, s, roomPath(room, "/leave"), carolTok, nil, 403, "M_FORBIDDEN")
	})
	t.Run("refusals", func(t *testing.T) {
		mustPost(t, s, roomPath(room, "/invite"), aliceTok, obj{}, 400, "M_MISSING_PARAM")
		mustPost(t, s, roomPath(room, "/invite"), aliceTok, obj{"user_id": "bob"}, 400, "M_INVALID_PARAM")
		mustPost(t, s, v3+"/join/"+url.PathEscape("!unknown:parley.test"), bobTok, nil, 404, "M_NOT_FOUND")
		mustPost(t, s, v3+"/join/"+url.PathEscape("#unknown:parley.test"), bobTok, nil, 404, "M_NOT_FOUND")
		mustPost(t, s, roomPath(room, "/invite"), aliceTok, obj{"user_id": alice}, 403, "M_FORBIDDEN")
	})
}

func TestPublicJoinKnockAndMembers(t *testing.T) {
	s := apptest.Start(t)
	alice, aliceTok := s.Register(t, "alice", pw)
	bob, bobTok := s.Register(t, "bob", pw)
	_, eveTok := s.Register(t, "eve", pw)
	public := mustCreateRoom(t, s, aliceTok, obj{"preset": "public_chat", "room_alias_name": "lobby"})
	mustPost(t, s, v3+"/join/"+url.PathEscape("#lobby:parley.test"), bobTok, nil, 200, "")

	t.Run("members with membership filters and at", func(t *testing.T) {
		res := s.Do(t, http.MethodGet, roomPath(public, "/messages?dir=b&limit=1"), aliceTok, nil)
		apptest.MustStatus(t, res, http.StatusOK)
		beforeLeave := res.String("start")
		mustPost(t, s, roomPath(public, "/leave"), bobTok, nil, 200, "")
		list := func(query string) []string {
			t.Helper()
			res := s.Do(t, http.MethodGet, roomPath(public, "/members"+query), aliceTok, nil)
			apptest.MustStatus(t, res, http.StatusOK)
			var users []string
			for _, ev := range res.Body["chunk"].([]any) {
				e := ev.(map[string]any)
				users = append(users, e["state_key"].(string)+"="+e["content"].(map[string]any)["membership"].(string))
			}
			slices.Sort(users)
			return users
		}
		tests := []struct {
			query string
			want  []string
		}{
			{"", []string{alice + "=join", bob + "=leave"}},
			{"?membership=join", []string{alice + "=join"}},
			{"?not_membership=join", []string{bob + "=leave"}},
			{"?at=" + beforeLeave, []string{alice + "=join", bob + "=join"}},
		}
		for _, tc := range tests {
			if got := list(tc.query); !slices.Equal(got, tc.want) {
				t.Errorf("members%s = %v, want %v", tc.query, got, tc.want)
			}
		}
		res = s.Do(t, http.MethodGet, roomPath(public, "/members"), eveTok, nil)
		if res.Status != 403 {
			t.Fatalf("non-member reads members: %d %s", res.Status, res.Raw)
		}
	})
	t.Run("knocking", func(t *testing.T) {
		knockRoom := mustCreateRoom(t, s, aliceTok, obj{"initial_state": []obj{
			{"type": "m.room.join_rules", "content": obj{"join_rule": "knock"}}}})
		mustPost(t, s, v3+"/knock/"+url.PathEscape(knockRoom), eveTok, obj{"reason": "let me in"}, 200, "")
		if m := membershipOf(t, s, aliceTok, knockRoom, "@eve:parley.test"); m != "knock" {
			t.Fatalf("eve's membership %v after knocking", m)
		}
		mustPost(t, s, v3+"/knock/"+url.PathEscape(public), eveTok, nil, 403, "M_FORBIDDEN")
		oldRoom := mustCreateRoom(t, s, aliceTok, obj{"room_version": "6"})
		mustPost(t, s, v3+"/knock/"+url.PathEscape(oldRoom), eveTok, nil, 403, "M_FORBIDDEN")
	})
}

func TestRestrictedJoin(t *testing.T) {
	s := apptest.Start(t)
	_, aliceTok := s.Register(t, "alice", pw)
	_, bobTok := s.Register(t, "bob", pw)
	space := mustCreateRoom(t, s, aliceTok, obj{"preset": "public_chat"})
	restricted := mustCreateRoom(t, s, aliceTok, obj{"initial_state": []obj{{"type": "m.room.join_rules",
		"content": obj{"join_rule": "restricted", "allow": []obj{{"type": "m.room_membership", "room_id": space}}}}}})
	mustPost(t, s, roomPath(restricted, "/join"), bobTok, nil, 403, "M_FORBIDDEN")
	mustPost(t, s, roomPath(space, "/join"), bobTok, nil, 200, "")
	mustPost(t, s, roomPath(restricted, "/join"), bobTok, nil, 200, "")
	st := stateOf(t, s, aliceTok, restricted)
	if via := st["m.room.member|@bob:parley.test"]["content"].(map[string]any)["join_authorised_via_users_server"]; via != "@alice:parley.test" {
		t.Fatalf("join authorised via %v", via)
	}
}

func TestGuestAccess(t *testing.T) {
	s := apptest.Start(t, func(c *config.Config) { c.Registration.AllowGuests = true })
	_, aliceTok := s.Register(t, "alice", pw)
	res := s.Do(t, http.MethodPost, v3+"/register?kind=guest", "", obj{})
	apptest.MustStatus(t, res, http.StatusOK)
	guest := res.String("access_token")
	open := mustCreateRoom(t, s, aliceTok, obj{"preset": "public_chat", "initial_state": []obj{
		{"type": "m.room.guest_access", "content": obj{"guest_access": "can_join"}}}})
	closed := mustCreateRoom(t, s, aliceTok, obj{"preset": "public_chat"})
	tests := []struct {
		name    string
		method  string
		path    string
		body    any
		status  int
		errcode string
	}{
		{"join a room without guest access", http.MethodPost, roomPath(closed, "/join"), nil, 403, "M_GUEST_ACCESS_FORBIDDEN"},
		{"join a room with guest access", http.MethodPost, roomPath(open, "/join"), nil, 200, ""},
		{"send a message", http.MethodPut, roomPath(open, "/send/m.room.message/g1"), obj{"body": "hi"}, 200, ""},
		{"send another type", http.MethodPut, roomPath(open, "/send/m.reaction/g2"), obj{}, 403, "M_GUEST_ACCESS_FORBIDDEN"},
		{"create a room", http.MethodPost, v3 + "/createRoom", obj{}, 403, "M_GUEST_ACCESS_FORBIDDEN"},
		{"invite", http.MethodPost, roomPath(open, "/invite"), obj{"user_id": "@x:parley.test"}, 403, "M_GUEST_ACCESS_FORBIDDEN"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := s.Do(t, tc.method, tc.path, guest, tc.body)
			if res.Status != tc.status || res.Errcode() != tc.errcode {
				t.Fatalf("%d %s, want %d %s: %s", res.Status, res.Errcode(), tc.status, tc.errcode, res.Raw)
			}
		})
	}
}

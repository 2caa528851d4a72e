package clientapi_test

import (
	"net/http"
	"testing"

	"github.com/parleyhq/parley/apptest"
)

// memberContent is the content of user's current m.room.member event.
func memberContent(t *testing.T, s *apptest.Server, token, room, user string) map[string]any {
	t.Helper()
	ev := stateOf(t, s, token, room)["m.room.member|"+user]
	if ev == nil {
		t.Fatalf("no member event of %s", user)
	}
	return ev["content"].(map[string]any)
}

func TestProfileInMemberEvents(t *testing.T) {
	s := apptest.Start(t)
	alice, aliceTok := s.Register(t, "alice", pw)
	bob, bobTok := s.Register(t, "bob", pw)
	room := mustCreateRoom(t, s, aliceTok, obj{"preset": "private_chat"})
	left := mustCreateRoom(t, s, aliceTok, obj{"preset": "public_chat"})
	mustPost(t, s, roomPath(room, "/invite"), aliceTok, obj{"user_id": bob}, 200, "")
	invite := memberContent(t, s, aliceTok, room, bob)
	mustPost(t, s, roomPath(room, "/join"), bobTok, nil, 200, "")
	join := memberContent(t, s, aliceTok, room, bob)
	mustPost(t, s, roomPath(left, "/join"), bobTok, nil, 200, "")
	mustPost(t, s, roomPath(left, "/leave"), bobTok, nil, 200, "")

	res := s.Do(t, http.MethodPut, profilePath(bob, "displayname"), bobTok, obj{"displayname": "Bobby"})
	apptest.MustStatus(t, res, http.StatusOK)
	res = s.Do(t, http.MethodPut, profilePath(bob, "avatar_url"), bobTok, obj{"avatar_url": "mxc://parley.test/bob"})
	apptest.MustStatus(t, res, http.StatusOK)
	changed := memberContent(t, s, aliceTok, room, bob)
	res = s.Do(t, http.MethodPut, profilePath(bob, "avatar_url"), bobTok, obj{"avatar_url": ""})
	apptest.MustStatus(t, res, http.StatusOK)
	cleared := memberContent(t, s, aliceTok, room, bob)

	tests := []struct {
		name    string
		content map[string]any
		want    map[string]any
	}{
		{"the creator's join carries the default name", memberContent(t, s, aliceTok, room, alice), obj{"membership": "join", "displayname": "alice"}},
		{"an invite of a local user carries the profile", invite, obj{"membership": "invite", "displayname": "bob"}},
		{"a join carries the profile", join, obj{"membership": "join", "displayname": "bob"}},
		{"a profile change re-sends the join", changed, obj{"membership": "join", "displayname": "Bobby", "avatar_url": "mxc://parley.test/bob"}},
		{"a cleared avatar leaves the event", cleared, obj{"membership": "join", "displayname": "Bobby"}},
		{"a room left is not touched", memberContent(t, s, aliceTok, left, bob), obj{"membership": "leave"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.content) != len(tc.want) {
				t.Fatalf("content %v, want %v", tc.content, tc.want)
			}
			for k, v := range tc.want {
				if tc.content[k] != v {
					t.Fatalf("content %v, want %v", tc.content, tc.want)
				}
			}
		})
	}
}

package clientapi_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/parleyhq/parley/apptest"
)

func TestIgnoredUsersInSync(t *testing.T) {
	s := apptest.Start(t)
	alice, aliceTok := s.Register(t, "alice", pw)
	bob, bobTok := s.Register(t, "bob", pw)
	_, carolTok := s.Register(t, "carol", pw)
	room := newRoom(t, s, aliceTok, obj{"preset": "public_chat"})
	roomPost(t, s, bobTok, room, "join", nil)
	roomPost(t, s, carolTok, room, "join", nil)
	apptest.MustStatus(t, s.Do(t, http.MethodPut, accountDataPath(alice, "", "m.ignored_user_list"), aliceTok,
		obj{"ignored_users": obj{bob: obj{}}}), http.StatusOK)
	since := mustSync(t, s, aliceTok, "").NextBatch

	sendText(t, s, bobTok, room, "i1", "from bob")
	sendText(t, s, carolTok, room, "i2", "from carol")
	bobsRoom := newRoom(t, s, bobTok, obj{"invite": []string{alice}})
	carolsRoom := newRoom(t, s, carolTok, obj{"invite": []string{alice}})

	body := mustSync(t, s, aliceTok, since, "timeout", "10000")
	t.Run("an ignored user's messages are left out", func(t *testing.T) {
		got := bodies(body.Rooms.Join[room].Timeline.Events)
		if slices.Contains(got, "from bob") || !slices.Contains(got, "from carol") {
			t.Fatalf("timeline %v", got)
		}
	})
	t.Run("an ignored user's invite is not shown", func(t *testing.T) {
		if _, ok := body.Rooms.Invite[bobsRoom]; ok {
			t.Error("bob's invite shown")
		}
		if _, ok := body.Rooms.Invite[carolsRoom]; !ok {
			t.Error("carol's invite missing")
		}
	})
	t.Run("others still see the ignored user", func(t *testing.T) {
		got := bodies(mustSync(t, s, carolTok, "").Rooms.Join[room].Timeline.Events)
		if !slices.Contains(got, "from bob") {
			t.Fatalf("carol's timeline %v", got)
		}
	})
}

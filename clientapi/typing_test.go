package clientapi_test

import (
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/parleyhq/parley/apptest"
)

func typingPath(room, user string) string {
	return v3 + "/rooms/" + url.PathEscape(room) + "/typing/" + url.PathEscape(user)
}

// ephemeralOf returns the events of type typ in room's ephemeral section.
func ephemeralOf(body syncBody, room, typ string) []syncEvent {
	jr, ok := body.Rooms.Join[room]
	if !ok || jr.Ephemeral == nil {
		return nil
	}
	var out []syncEvent
	for _, ev := range jr.Ephemeral.Events {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

// typers reads the user_ids of the one m.typing event of room; ok is false
// when there is none.
func typers(t *testing.T, body syncBody, room string) (users []string, ok bool) {
	t.Helper()
	evs := ephemeralOf(body, room, "m.typing")
	if len(evs) == 0 {
		return nil, false
	}
	if len(evs) > 1 {
		t.Fatalf("%d m.typing events in one room", len(evs))
	}
	users = []string{}
	for _, u := range evs[0].Content["user_ids"].([]any) {
		users = append(users, u.(string))
	}
	return users, true
}

func TestTyping(t *testing.T) {
	s := apptest.Start(t)
	alice, aliceTok := s.Register(t, "alice", pw)
	bob, bobTok := s.Register(t, "bob", pw)
	carol, carolTok := s.Register(t, "carol", pw)
	room := newRoom(t, s, aliceTok, obj{"preset": "public_chat"})
	roomPost(t, s, bobTok, room, "join", nil)
	since := mustSync(t, s, aliceTok, "").NextBatch

	t.Run("refusals", func(t *testing.T) {
		for _, c := range []struct {
			name, token, user string
			body              obj
			status            int
			code              string
		}{
			{"not joined", carolTok, carol, obj{"typing": true}, http.StatusForbidden, "M_FORBIDDEN"},
			{"for another user", bobTok, alice, obj{"typing": true}, http.StatusForbidden, "M_FORBIDDEN"},
			{"typing missing", bobTok, bob, obj{"timeout": 1000}, http.StatusBadRequest, "M_BAD_JSON"},
		} {
			t.Run(c.name, func(t *testing.T) {
				res := s.Do(t, http.MethodPut, typingPath(room, c.user), c.token, c.body)
				apptest.MustStatus(t, res, c.status)
				if res.Errcode() != c.code {
					t.Fatalf("errcode %s, want %s", res.Errcode(), c.code)
				}
			})
		}
	})

	t.Run("a typer shows in the other member's ephemeral section", func(t *testing.T) {
		apptest.MustStatus(t, s.Do(t, http.MethodPut, typingPath(room, bob), bobTok, obj{"typing": true, "timeout": 30000}), http.StatusOK)
		body := mustSync(t, s, aliceTok, since, "timeout", "10000")
		users, ok := typers(t, body, room)
		if !ok || !slices.Equal(users, []string{bob}) {
			t.Fatalf("typers %v (present %v), want [%s]", users, ok, bob)
		}
		since = body.NextBatch
	})
	t.Run("nothing new: no m.typing", func(t *testing.T) {
		sendText(t, s, aliceTok, room, "ty1", "hello")
		body := mustSync(t, s, aliceTok, since)
		if _, ok := typers(t, body, room); ok {
			t.Fatalf("m.typing repeated without a change")
		}
		since = body.NextBatch
	})
	t.Run("stopping sends an empty typer list", func(t *testing.T) {
		apptest.MustStatus(t, s.Do(t, http.MethodPut, typingPath(room, bob), bobTok, obj{"typing": false}), http.StatusOK)
		body := mustSync(t, s, aliceTok, since, "timeout", "10000")
		users, ok := typers(t, body, room)
		if !ok || len(users) != 0 {
			t.Fatalf("typers %v (present %v), want none", users, ok)
		}
		since = body.NextBatch
	})
	t.Run("expiry wakes a waiting sync", func(t *testing.T) {
		apptest.MustStatus(t, s.Do(t, http.MethodPut, typingPath(room, bob), bobTok, obj{"typing": true, "timeout": 1500}), http.StatusOK)
		// Long-poll until the list is empty again: the timer's expiry is
		// the only thing that can wake these syncs.
		sawBob := false
		for range 5 {
			body := mustSync(t, s, aliceTok, since, "timeout", "20000")
			since = body.NextBatch
			users, ok := typers(t, body, room)
			if !ok {
				continue
			}
			if slices.Contains(users, bob) {
				sawBob = true
				continue
			}
			if len(users) == 0 {
				if !sawBob {
					t.Log("the notification expired before the first sync")
				}
				return
			}
		}
		t.Fatal("typing never expired")
	})
}

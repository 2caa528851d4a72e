package clientapi_test

import (
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/parleyhq/parley/apptest"
)

// /messages leaves out the messages of ignored users but keeps their state
// events (m.ignored_user_list, spec "Ignoring Users").
func TestMessagesLeaveOutIgnoredUsers(t *testing.T) {
	s := apptest.Start(t)
	alice, aliceTok := s.Register(t, "alice", pw)
	bob, bobTok := s.Register(t, "bob", pw)
	room := newRoom(t, s, aliceTok, obj{"preset": "public_chat"})
	roomPost(t, s, bobTok, room, "join", nil)
	fromBob := sendText(t, s, bobTok, room, "b1", "hello")
	fromAlice := sendText(t, s, aliceTok, room, "a1", "hi")

	messages := func() (ids []string, senders map[string]bool) {
		t.Helper()
		res := s.Do(t, http.MethodGet, "/_matrix/client/v3/rooms/"+url.PathEscape(room)+"/messages?dir=b&limit=50", aliceTok, nil)
		apptest.MustStatus(t, res, http.StatusOK)
		senders = map[string]bool{}
		for _, raw := range res.Body["chunk"].([]any) {
			ev := raw.(map[string]any)
			ids = append(ids, ev["event_id"].(string))
			if _, isState := ev["state_key"]; isState {
				senders["state:"+ev["sender"].(string)] = true
			}
		}
		return ids, senders
	}
	ids, _ := messages()
	if !slices.Contains(ids, fromBob) {
		t.Fatalf("bob's message missing before ignoring: %v", ids)
	}

	ignore := obj{"ignored_users": obj{bob: obj{}}}
	apptest.MustStatus(t, s.Do(t, http.MethodPut,
		"/_matrix/client/v3/user/"+url.PathEscape(alice)+"/account_data/m.ignored_user_list", aliceTok, ignore), http.StatusOK)
	ids, senders := messages()
	if slices.Contains(ids, fromBob) {
		t.Errorf("bob's message still served after alice ignored him: %v", ids)
	}
	if !slices.Contains(ids, fromAlice) {
		t.Errorf("alice's own message left out: %v", ids)
	}
	if !senders["state:"+bob] {
		t.Errorf("bob's membership (a state event) left out: %v", senders)
	}
}

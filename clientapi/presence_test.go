package clientapi_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/config"
)

func presencePath(user string) string { return v3 + "/presence/" + url.PathEscape(user) + "/status" }

// presenceOf decodes a sync's presence events by sender.
func presenceOf(t *testing.T, s *apptest.Server, token, since string, extra ...string) (map[string]map[string]any, string) {
	t.Helper()
	res := s.Do(t, http.MethodGet, syncQuery(since, extra...), token, nil)
	apptest.MustStatus(t, res, http.StatusOK)
	var body struct {
		NextBatch string `json:"next_batch"`
		Presence  struct {
			Events []struct {
				Type    string         `json:"type"`
				Sender  string         `json:"sender"`
				Content map[string]any `json:"content"`
			} `json:"events"`
		} `json:"presence"`
	}
	mustUnmarshal(t, res.Raw, &body)
	out := map[string]map[string]any{}
	for _, ev := range body.Presence.Events {
		if ev.Type != "m.presence" {
			t.Fatalf("presence event of type %s", ev.Type)
		}
		out[ev.Sender] = ev.Content
	}
	return out, body.NextBatch
}

func TestPresence(t *testing.T) {
	s := apptest.Start(t)
	alice, aliceTok := s.Register(t, "alice", pw)
	bob, bobTok := s.Register(t, "bob", pw)
	_, carolTok := s.Register(t, "carol", pw)
	room := newRoom(t, s, aliceTok, obj{"preset": "public_chat"})
	roomPost(t, s, bobTok, room, "join", nil)
	apptest.MustStatus(t, s.Do(t, http.MethodPut, presencePath(bob), bobTok, obj{"presence": "online", "status_msg": "lunch"}), http.StatusOK)

	t.Run("refusals", func(t *testing.T) {
		for _, c := range []struct {
			name, method, path, token string
			body                      any
			status                    int
			code                      string
		}{
			{"a stranger reads", http.MethodGet, presencePath(bob), carolTok, nil, http.StatusForbidden, "M_FORBIDDEN"},
			{"another user's status set", http.MethodPut, presencePath(bob), aliceTok, obj{"presence": "online"}, http.StatusForbidden, "M_FORBIDDEN"},
			{"unknown presence", http.MethodPut, presencePath(bob), bobTok, obj{"presence": "busy"}, http.StatusBadRequest, "M_INVALID_PARAM"},
		} {
			t.Run(c.name, func(t *testing.T) {
				res := s.Do(t, c.method, c.path, c.token, c.body)
				apptest.MustStatus(t, res, c.status)
				if res.Errcode() != c.code {
					t.Fatalf("errcode %s, want %s", res.Errcode(), c.code)
				}
			})
		}
	})
	t.Run("a room member reads it", func(t *testing.T) {
		res := s.Do(t, http.MethodGet, presencePath(bob), aliceTok, nil)
		apptest.MustStatus(t, res, http.StatusOK)
		if res.String("presence") != "online" || res.String("status_msg") != "lunch" || res.Body["currently_active"] != true {
			t.Fatalf("bob's presence %s", res.Raw)
		}
		if _, ok := res.Body["last_active_ago"].(float64); !ok {
			t.Fatalf("no last_active_ago: %s", res.Raw)
		}
	})
	var since string
	t.Run("sync shows room members' presence, not strangers'", func(t *testing.T) {
		var got map[string]map[string]any
		got, since = presenceOf(t, s, aliceTok, "")
		if got[bob]["presence"] != "online" || got[bob]["status_msg"] != "lunch" {
			t.Fatalf("alice sees %v", got)
		}
		if _, ok := got[alice]; !ok {
			t.Errorf("alice's own presence missing: %v", got)
		}
		other, _ := presenceOf(t, s, carolTok, "")
		if _, ok := other[bob]; ok {
			t.Fatalf("carol sees bob's presence: %v", other)
		}
	})
	t.Run("a change wakes the other member's sync", func(t *testing.T) {
		apptest.MustStatus(t, s.Do(t, http.MethodPut, presencePath(bob), bobTok, obj{"presence": "unavailable"}), http.StatusOK)
		for range 5 {
			got, next := presenceOf(t, s, aliceTok, since, "timeout", "10000")
			since = next
			if got[bob]["presence"] == "unavailable" {
				return
			}
		}
		t.Fatal("bob's unavailable presence never arrived")
	})
}

func TestPresenceTimeouts(t *testing.T) {
	s := apptest.Start(t, func(c *config.Config) {
		c.Presence.IdleTimeout = 300 * time.Millisecond
		c.Presence.OfflineTimeout = 600 * time.Millisecond
	})
	_, aliceTok := s.Register(t, "alice", pw)
	bob, bobTok := s.Register(t, "bob", pw)
	room := newRoom(t, s, aliceTok, nil)
	roomPost(t, s, aliceTok, room, "invite", obj{"user_id": bob})
	roomPost(t, s, bobTok, room, "join", nil)
	// bob's requests made him online; with no sync he goes unavailable,
	// then offline: only the timers can wake alice's long-polls.
	since := ""
	seen := map[string]bool{}
	for range 10 {
		got, next := presenceOf(t, s, aliceTok, since, "timeout", "10000", "set_presence", "offline")
		since = next
		if p, ok := got[bob]["presence"].(string); ok {
			seen[p] = true
			if p == "offline" {
				break
			}
		}
	}
	if !seen["offline"] {
		t.Fatalf("bob never went offline; saw %v", seen)
	}
	t.Run("a sync with set_presence offline leaves the user offline", func(t *testing.T) {
		mustSync(t, s, bobTok, "", "set_presence", "offline")
		res := s.Do(t, http.MethodGet, presencePath(bob), aliceTok, nil)
		apptest.MustStatus(t, res, http.StatusOK)
		if res.String("presence") != "offline" {
			t.Fatalf("bob's presence %s", res.Raw)
		}
	})
}

func TestPresenceDisabled(t *testing.T) {
	s := apptest.Start(t, func(c *config.Config) { c.Presence.Enabled = false })
	_, aliceTok := s.Register(t, "alice", pw)
	bob, bobTok := s.Register(t, "bob", pw)
	room := newRoom(t, s, aliceTok, obj{"preset": "public_chat"})
	roomPost(t, s, bobTok, room, "join", nil)
	apptest.MustStatus(t, s.Do(t, http.MethodPut, presencePath(bob), bobTok, obj{"presence": "online"}), http.StatusOK)
	res := s.Do(t, http.MethodGet, presencePath(bob), aliceTok, nil)
	apptest.MustStatus(t, res, http.StatusOK)
	if res.String("presence") != "offline" {
		t.Fatalf("presence %s with presence off", res.Raw)
	}
	if got, _ := presenceOf(t, s, aliceTok, ""); len(got) != 0 {
		t.Fatalf("sync carries presence %v with presence off", got)
	}
}

package clientapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/parleyhq/parley/apptest"
)

func filterPath(user string) string { return v3 + "/user/" + user + "/filter" }

func TestFilterUploadAndDownload(t *testing.T) {
	s := apptest.Start(t)
	alice, tok := s.Register(t, "alice", pw)
	bob, bobTok := s.Register(t, "bob", pw)
	def := obj{
		"event_fields": []string{"type", "content.body"},
		"room": obj{
			"timeline": obj{"limit": 5, "types": []string{"m.room.*"}, "not_senders": []string{bob}},
			"state":    obj{"lazy_load_members": true},
		},
	}
	up := s.Do(t, http.MethodPost, filterPath(alice), tok, def)
	apptest.MustStatus(t, up, http.StatusOK)
	fid := up.String("filter_id")
	if fid == "" || strings.HasPrefix(fid, "{") {
		t.Fatalf("filter_id %q: must not be empty nor start with {", fid)
	}

	t.Run("download returns the definition", func(t *testing.T) {
		got := s.Do(t, http.MethodGet, filterPath(alice)+"/"+fid, tok, nil)
		apptest.MustStatus(t, got, http.StatusOK)
		room, _ := got.Body["room"].(map[string]any)
		tl, _ := room["timeline"].(map[string]any)
		if tl["limit"] != float64(5) || len(got.Body["event_fields"].([]any)) != 2 {
			t.Errorf("downloaded %s", got.Raw)
		}
	})
	t.Run("a percent-encoded user id in the path", func(t *testing.T) {
		// %40alice%3Aparley.test, as matrix-js-sdk sends it.
		encoded := strings.NewReplacer("@", "%40", ":", "%3A").Replace(alice)
		up := s.Do(t, http.MethodPost, filterPath(encoded), tok, def)
		apptest.MustStatus(t, up, http.StatusOK)
		if up.String("filter_id") != fid {
			t.Errorf("id %q, want %q", up.String("filter_id"), fid)
		}
		apptest.MustStatus(t, s.Do(t, http.MethodGet, filterPath(encoded)+"/"+fid, tok, nil), http.StatusOK)
	})
	t.Run("the same filter again gets the same id", func(t *testing.T) {
		again := s.Do(t, http.MethodPost, filterPath(alice), tok, def)
		if again.String("filter_id") != fid {
			t.Errorf("id %q, want %q", again.String("filter_id"), fid)
		}
	})
	t.Run("another filter gets another id", func(t *testing.T) {
		other := s.Do(t, http.MethodPost, filterPath(alice), tok, obj{"room": obj{"include_leave": true}})
		if id := other.String("filter_id"); id == "" || id == fid {
			t.Errorf("id %q", id)
		}
	})

	refusals := []struct {
		name, method, path, token string
		body                      any
		status                    int
		errcode, inMessage        string
	}{
		{"upload for another user", http.MethodPost, filterPath(alice), bobTok, obj{}, 403, "M_FORBIDDEN", ""},
		{"download another user's filter", http.MethodGet, filterPath(alice) + "/" + fid, bobTok, nil, 403, "M_FORBIDDEN", ""},
		{"own id under another user", http.MethodGet, filterPath(bob) + "/" + fid, bobTok, nil, 404, "M_NOT_FOUND", ""},
		{"unknown id", http.MethodGet, filterPath(alice) + "/987654", tok, nil, 404, "M_NOT_FOUND", ""},
		{"non-numeric id", http.MethodGet, filterPath(alice) + "/abc", tok, nil, 404, "M_NOT_FOUND", ""},
		{"not JSON", http.MethodPost, filterPath(alice), tok, `{"room":`, 400, "M_NOT_JSON", ""},
		{"wrong type names the field", http.MethodPost, filterPath(alice), tok, `{"room":{"timeline":{"limit":"5"}}}`, 400, "M_BAD_JSON", "room.timeline.limit"},
		{"zero limit", http.MethodPost, filterPath(alice), tok, `{"presence":{"limit":0}}`, 400, "M_BAD_JSON", "presence.limit"},
		{"bad room id", http.MethodPost, filterPath(alice), tok, `{"room":{"not_rooms":["x"]}}`, 400, "M_BAD_JSON", "room.not_rooms"},
		{"no token", http.MethodPost, filterPath(alice), "", obj{}, 401, "M_MISSING_TOKEN", ""},
	}
	for _, c := range refusals {
		t.Run(c.name, func(t *testing.T) {
			res := s.Do(t, c.method, c.path, c.token, c.body)
			if res.Status != c.status || res.Errcode() != c.errcode {
				t.Fatalf("got %d %s, want %d %s", res.Status, res.Raw, c.status, c.errcode)
			}
			if !strings.Contains(res.String("error"), c.inMessage) {
				t.Errorf("error %q does not mention %q", res.String("error"), c.inMessage)
			}
		})
	}
}

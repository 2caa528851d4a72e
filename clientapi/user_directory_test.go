package clientapi_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/config"
)

// searchDirectory returns the user ids a search finds and whether the
// result was limited.
func searchDirectory(t *testing.T, s *apptest.Server, token, term string, limit int) ([]string, bool) {
	t.Helper()
	body := obj{"search_term": term}
	if limit > 0 {
		body["limit"] = limit
	}
	res := s.Do(t, http.MethodPost, v3+"/user_directory/search", token, body)
	apptest.MustStatus(t, res, http.StatusOK)
	var ids []string
	for _, r := range res.Body["results"].([]any) {
		ids = append(ids, r.(map[string]any)["user_id"].(string))
	}
	return ids, res.Body["limited"].(bool)
}

func TestUserDirectoryVisibility(t *testing.T) {
	s := apptest.Start(t)
	_, aliceTok := s.Register(t, "alice", pw)
	bob, bobTok := s.Register(t, "bob", pw)
	carol, carolTok := s.Register(t, "carol", pw)
	dave, daveTok := s.Register(t, "dave", pw)
	_, eveTok := s.Register(t, "eve", pw)

	shared := mustCreateRoom(t, s, aliceTok, obj{"preset": "private_chat", "invite": []string{bob}})
	mustPost(t, s, roomPath(shared, "/join"), bobTok, nil, 200, "")
	mustCreateRoom(t, s, carolTok, obj{"preset": "private_chat"}) // carol, a stranger alone in a private room
	public := mustCreateRoom(t, s, daveTok, obj{"preset": "public_chat"})
	mustPost(t, s, roomPath(public, "/join"), eveTok, nil, 200, "")
	res := s.Do(t, http.MethodPut, profilePath(bob, "displayname"), bobTok, obj{"displayname": "Robert Smith"})
	apptest.MustStatus(t, res, http.StatusOK)
	r := withUIA(t, s, http.MethodPost, v3+"/account/deactivate", eveTok, obj{}, "m.login.password",
		func(session string) obj { return passwordAuth(session, "eve", pw) })
	apptest.MustStatus(t, r, http.StatusOK)

	tests := []struct {
		name string
		term string
		want []string
	}{
		{"a user sharing a room, by localpart", "bob", []string{bob}},
		{"by a later word of the display name", "smi", []string{bob}},
		{"case-insensitive", "ROBERT", []string{bob}},
		{"by the full user id", bob, []string{bob}},
		{"a stranger in a private room is not found", "carol", nil},
		{"a public room's member is found", "dave", []string{dave}},
		{"a deactivated user is never found", "eve", nil},
		{"no match", "zebra", nil},
		{"a word in the middle does not match", "obert", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, limited := searchDirectory(t, s, aliceTok, tc.term, 0)
			if !slices.Equal(got, tc.want) || limited {
				t.Fatalf("search %q: %v (limited %v), want %v", tc.term, got, limited, tc.want)
			}
		})
	}

	t.Run("results carry the profile", func(t *testing.T) {
		res := s.Do(t, http.MethodPost, v3+"/user_directory/search", aliceTok, obj{"search_term": "robert"})
		apptest.MustStatus(t, res, http.StatusOK)
		first := res.Body["results"].([]any)[0].(map[string]any)
		if first["display_name"] != "Robert Smith" {
			t.Fatalf("result %s", res.Raw)
		}
	})
	t.Run("limit", func(t *testing.T) {
		// "parley" is the server name: every visible user matches.
		got, limited := searchDirectory(t, s, aliceTok, "parley", 1)
		if len(got) != 1 || !limited {
			t.Fatalf("limit 1: %v limited %v", got, limited)
		}
		all, limited := searchDirectory(t, s, aliceTok, "parley", 0)
		if len(all) != 3 || limited || !slices.Contains(all, dave) || slices.Contains(all, carol) {
			t.Fatalf("all visible: %v limited %v", all, limited)
		}
	})
	t.Run("missing search_term", func(t *testing.T) {
		res := s.Do(t, http.MethodPost, v3+"/user_directory/search", aliceTok, obj{})
		if res.Status != 400 || res.Errcode() != "M_MISSING_PARAM" {
			t.Fatalf("%d %s", res.Status, res.Raw)
		}
	})
	t.Run("after bob leaves the shared room he is not found", func(t *testing.T) {
		mustPost(t, s, roomPath(shared, "/leave"), bobTok, nil, 200, "")
		if got, _ := searchDirectory(t, s, aliceTok, "bob", 0); got != nil {
			t.Fatalf("found %v", got)
		}
	})
	t.Run("a profile change is searchable at once", func(t *testing.T) {
		res := s.Do(t, http.MethodPut, profilePath(dave, "displayname"), daveTok, obj{"displayname": "Zed"})
		apptest.MustStatus(t, res, http.StatusOK)
		if got, _ := searchDirectory(t, s, aliceTok, "zed", 0); !slices.Equal(got, []string{dave}) {
			t.Fatalf("found %v", got)
		}
	})
}

func TestUserDirectorySearchAllUsers(t *testing.T) {
	s := apptest.Start(t, func(c *config.Config) { c.UserDirectory.SearchAllUsers = true })
	_, aliceTok := s.Register(t, "alice", pw)
	carol, carolTok := s.Register(t, "carol", pw)
	mustCreateRoom(t, s, carolTok, obj{"preset": "private_chat"})
	if got, _ := searchDirectory(t, s, aliceTok, "carol", 0); !slices.Equal(got, []string{carol}) {
		t.Fatalf("search_all_users: found %v, want carol", got)
	}
}

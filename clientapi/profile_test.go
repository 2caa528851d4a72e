package clientapi_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/config"
)

func profilePath(user string, rest ...string) string {
	p := v3 + "/profile/" + url.PathEscape(user)
	for _, r := range rest {
		p += "/" + r
	}
	return p
}

func TestProfileFields(t *testing.T) {
	s := apptest.Start(t, withUnreachableServer(t))
	alice, aliceTok := s.Register(t, "alice", pw)
	bob, bobTok := s.Register(t, "bob", pw)

	tests := []struct {
		name    string
		method  string
		path    string
		token   string
		body    any
		status  int
		errcode string
	}{
		{"default display name is the localpart", http.MethodGet, profilePath(alice, "displayname"), "", nil, 200, ""},
		{"set own display name", http.MethodPut, profilePath(alice, "displayname"), aliceTok, obj{"displayname": "Alice A"}, 200, ""},
		{"set avatar", http.MethodPut, profilePath(alice, "avatar_url"), aliceTok, obj{"avatar_url": "mxc://parley.test/abc"}, 200, ""},
		{"avatar must be mxc", http.MethodPut, profilePath(alice, "avatar_url"), aliceTok, obj{"avatar_url": "https://x/y"}, 400, "M_INVALID_PARAM"},
		{"display name must be a string", http.MethodPut, profilePath(alice, "displayname"), aliceTok, obj{"displayname": 3}, 400, "M_BAD_JSON"},
		{"set time zone", http.MethodPut, profilePath(alice, "m.tz"), aliceTok, obj{"m.tz": "Europe/London"}, 200, ""},
		{"set custom field", http.MethodPut, profilePath(alice, "com.example.pets"), aliceTok, obj{"com.example.pets": []any{"cat", 2}}, 200, ""},
		{"get custom field", http.MethodGet, profilePath(alice, "com.example.pets"), "", nil, 200, ""},
		{"someone else's profile", http.MethodPut, profilePath(alice, "displayname"), bobTok, obj{"displayname": "Mallory"}, 403, "M_FORBIDDEN"},
		{"someone else's delete", http.MethodDelete, profilePath(alice, "m.tz"), bobTok, nil, 403, "M_FORBIDDEN"},
		{"no token", http.MethodPut, profilePath(alice, "displayname"), "", obj{"displayname": "X"}, 401, "M_MISSING_TOKEN"},
		{"body without the key", http.MethodPut, profilePath(alice, "displayname"), aliceTok, obj{"avatar_url": "mxc://a/b"}, 400, "M_MISSING_PARAM"},
		{"key without namespace", http.MethodPut, profilePath(alice, "pets"), aliceTok, obj{"pets": 1}, 400, "M_INVALID_PARAM"},
		{"key with upper case", http.MethodPut, profilePath(alice, "com.Example.x"), aliceTok, obj{"com.Example.x": 1}, 400, "M_INVALID_PARAM"},
		{"reserved m. key", http.MethodPut, profilePath(alice, "m.pets"), aliceTok, obj{"m.pets": 1}, 400, "M_INVALID_PARAM"},
		{"key over 255 bytes", http.MethodPut, profilePath(alice, longKey), aliceTok, obj{longKey: 1}, 400, "M_KEY_TOO_LARGE"},
		{"bad key on get", http.MethodGet, profilePath(alice, "Pets"), "", nil, 400, "M_INVALID_PARAM"},
		{"unknown user", http.MethodGet, profilePath("@nobody:parley.test"), "", nil, 404, "M_NOT_FOUND"},
		{"unknown user's field", http.MethodGet, profilePath("@nobody:parley.test", "displayname"), "", nil, 404, "M_NOT_FOUND"},
		// Asked of the user's server over federation (tests in
		// federation/reads_test.go); one that cannot be reached is a 502.
		{"user of an unreachable server", http.MethodGet, profilePath("@x:" + unreachableServer), "", nil, 502, "M_UNKNOWN"},
		{"malformed user id", http.MethodGet, profilePath("alice"), "", nil, 400, "M_INVALID_PARAM"},
		{"unset field", http.MethodGet, profilePath(bob, "m.tz"), "", nil, 404, "M_NOT_FOUND"},
		{"delete field", http.MethodDelete, profilePath(alice, "m.tz"), aliceTok, nil, 200, ""},
		{"deleted field is gone", http.MethodGet, profilePath(alice, "m.tz"), "", nil, 404, "M_NOT_FOUND"},
		{"delete a missing field", http.MethodDelete, profilePath(alice, "m.tz"), aliceTok, nil, 200, ""},
		{"legacy r0 path", http.MethodGet, "/_matrix/client/r0/profile/" + url.PathEscape(alice), "", nil, 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := s.Do(t, tc.method, tc.path, tc.token, tc.body)
			if res.Status != tc.status || res.Errcode() != tc.errcode {
				t.Fatalf("%d %s, want %d %s: %s", res.Status, res.Errcode(), tc.status, tc.errcode, res.Raw)
			}
			switch tc.name {
			case "default display name is the localpart":
				if res.String("displayname") != "alice" {
					t.Fatalf("displayname %s", res.Raw)
				}
			case "get custom field":
				if v, _ := res.Body["com.example.pets"].([]any); len(v) != 2 || v[0] != "cat" {
					t.Fatalf("field %s", res.Raw)
				}
			}
		})
	}

	res := s.Do(t, http.MethodGet, profilePath(alice), "", nil)
	apptest.MustStatus(t, res, http.StatusOK)
	if res.String("displayname") != "Alice A" || res.String("avatar_url") != "mxc://parley.test/abc" ||
		res.Body["com.example.pets"] == nil || res.Body["m.tz"] != nil {
		t.Fatalf("whole profile: %s", res.Raw)
	}
}

var longKey = "com.example." + strings.Repeat("a", 250)

func TestProfileTooLarge(t *testing.T) {
	s := apptest.Start(t, func(c *config.Config) { c.Client.MaxBodyBytes = 1 << 20 })
	alice, tok := s.Register(t, "alice", pw)
	big := strings.Repeat("x", 40*1024)
	res := s.Do(t, http.MethodPut, profilePath(alice, "com.example.one"), tok, obj{"com.example.one": big})
	apptest.MustStatus(t, res, http.StatusOK)
	res = s.Do(t, http.MethodPut, profilePath(alice, "com.example.two"), tok, obj{"com.example.two": big})
	if res.Status != http.StatusBadRequest || res.Errcode() != "M_PROFILE_TOO_LARGE" {
		t.Fatalf("second 40 KiB field: %d %s", res.Status, res.Raw)
	}
	// Replacing the big field by a smaller one fits again.
	res = s.Do(t, http.MethodPut, profilePath(alice, "com.example.one"), tok, obj{"com.example.one": "small"})
	apptest.MustStatus(t, res, http.StatusOK)
	res = s.Do(t, http.MethodPut, profilePath(alice, "com.example.two"), tok, obj{"com.example.two": big})
	apptest.MustStatus(t, res, http.StatusOK)
}

func TestProfileCapabilities(t *testing.T) {
	s := apptest.Start(t)
	_, tok := s.Register(t, "alice", pw)
	res := s.Do(t, http.MethodGet, v3+"/capabilities", tok, nil)
	apptest.MustStatus(t, res, http.StatusOK)
	caps := res.Body["capabilities"].(map[string]any)
	for _, c := range []string{"m.set_displayname", "m.set_avatar_url", "m.profile_fields"} {
		t.Run(c, func(t *testing.T) {
			if v, _ := caps[c].(map[string]any); v["enabled"] != true {
				t.Fatalf("%s: %v", c, caps[c])
			}
		})
	}
}

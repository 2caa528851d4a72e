package clientapi_test

import (
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/parleyhq/parley/apptest"
)

func aliasPath(alias string) string { return v3 + "/directory/room/" + url.PathEscape(alias) }

func TestAliases(t *testing.T) {
	s := apptest.Start(t)
	_, aliceTok := s.Register(t, "alice", pw)
	_, bobTok := s.Register(t, "bob", pw)
	room := mustCreateRoom(t, s, aliceTok, obj{"preset": "public_chat"})
	other := mustCreateRoom(t, s, aliceTok, nil)
	mustPost(t, s, roomPath(room, "/join"), bobTok, nil, 200, "")

	tests := []struct {
		name    string
		method  string
		path    string
		token   string
		body    any
		status  int
		errcode string
	}{
		{"create", http.MethodPut, aliasPath("#home:parley.test"), aliceTok, obj{"room_id": room}, 200, ""},
		{"taken", http.MethodPut, aliasPath("#home:parley.test"), aliceTok, obj{"room_id": room}, 409, "M_UNKNOWN"},
		{"bob's own alias", http.MethodPut, aliasPath("#bobs:parley.test"), bobTok, obj{"room_id": room}, 200, ""},
		{"another server's alias", http.MethodPut, aliasPath("#x:elsewhere.test"), aliceTok, obj{"room_id": room}, 400, "M_INVALID_PARAM"},
		{"malformed alias", http.MethodPut, aliasPath("home"), aliceTok, obj{"room_id": room}, 400, "M_INVALID_PARAM"},
		{"unknown room", http.MethodPut, aliasPath("#x:parley.test"), aliceTok, obj{"room_id": "!no:parley.test"}, 404, "M_NOT_FOUND"},
		{"non-member", http.MethodPut, aliasPath("#y:parley.test"), bobTok, obj{"room_id": other}, 403, "M_FORBIDDEN"},
		{"resolve", http.MethodGet, aliasPath("#home:parley.test"), "", nil, 200, ""},
		{"resolve unknown", http.MethodGet, aliasPath("#nothing:parley.test"), "", nil, 404, "M_NOT_FOUND"},
		{"bob may not delete alice's alias", http.MethodDelete, aliasPath("#home:parley.test"), bobTok, nil, 403, "M_FORBIDDEN"},
		{"canonical alias to it", http.MethodPut, roomPath(room, "/state/m.room.canonical_alias"), aliceTok, obj{"alias": "#home:parley.test"}, 200, ""},
		{"canonical alias elsewhere", http.MethodPut, roomPath(other, "/state/m.room.canonical_alias"), aliceTok, obj{"alt_aliases": []string{"#home:parley.test"}}, 400, "M_BAD_ALIAS"},
		{"alice, a moderator, deletes bob's alias", http.MethodDelete, aliasPath("#bobs:parley.test"), aliceTok, nil, 200, ""},
		{"deleted is gone", http.MethodGet, aliasPath("#bobs:parley.test"), "", nil, 404, "M_NOT_FOUND"},
		{"delete unknown", http.MethodDelete, aliasPath("#bobs:parley.test"), aliceTok, nil, 404, "M_NOT_FOUND"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := s.Do(t, tc.method, tc.path, tc.token, tc.body)
			if res.Status != tc.status || res.Errcode() != tc.errcode {
				t.Fatalf("%d %s, want %d %s: %s", res.Status, res.Errcode(), tc.status, tc.errcode, res.Raw)
			}
			if tc.name == "resolve" && (res.String("room_id") != room || len(res.Body["servers"].([]any)) != 1) {
				t.Fatalf("resolved to %s", res.Raw)
			}
		})
	}
	res := s.Do(t, http.MethodGet, roomPath(room, "/aliases"), bobTok, nil)
	apptest.MustStatus(t, res, http.StatusOK)
	if got := res.Body["aliases"].([]any); len(got) != 1 || got[0] != "#home:parley.test" {
		t.Fatalf("aliases %v", got)
	}
	if res := s.Do(t, http.MethodGet, roomPath(other, "/aliases"), bobTok, nil); res.Status != 403 {
		t.Fatalf("non-member lists aliases: %d", res.Status)
	}
}

func TestDirectoryAndPublicRooms(t *testing.T) {
	s := apptest.Start(t, withUnreachableServer(t))
	_, aliceTok := s.Register(t, "alice", pw)
	_, bobTok := s.Register(t, "bob", pw)
	published := mustCreateRoom(t, s, aliceTok, obj{"visibility": "public", "name": "Gardening club", "topic": "roses"})
	second := mustCreateRoom(t, s, aliceTok, obj{"visibility": "public", "name": "Chess"})
	hidden := mustCreateRoom(t, s, aliceTok, obj{"preset": "public_chat", "name": "Hidden"})
	mustPost(t, s, roomPath(published, "/join"), bobTok, nil, 200, "")

	vis := func(room string) string {
		res := s.Do(t, http.MethodGet, v3+"/directory/list/room/"+url.PathEscape(room), "", nil)
		apptest.MustStatus(t, res, http.StatusOK)
		return res.String("visibility")
	}
	if vis(published) != "public" || vis(hidden) != "private" {
		t.Fatalf("visibility %s / %s", vis(published), vis(hidden))
	}
	res := s.Do(t, http.MethodPut, v3+"/directory/list/room/"+url.PathEscape(published), bobTok, obj{"visibility": "private"})
	if res.Status != 403 {
		t.Fatalf("bob unpublishes: %d", res.Status)
	}
	res = s.Do(t, http.MethodPut, v3+"/directory/list/room/"+url.PathEscape(hidden), aliceTok, obj{"visibility": "sideways"})
	if res.Status != 400 {
		t.Fatalf("bad visibility: %d", res.Status)
	}

	names := func(res apptest.Response) []string {
		var out []string
		for _, c := range res.Body["chunk"].([]any) {
			out = append(out, c.(map[string]any)["name"].(string))
		}
		slices.Sort(out)
		return out
	}
	res = s.Do(t, http.MethodGet, v3+"/publicRooms", "", nil)
	apptest.MustStatus(t, res, http.StatusOK)
	if got := names(res); !slices.Equal(got, []string{"Chess", "Gardening club"}) {
		t.Fatalf("public rooms %v", got)
	}
	for _, c := range res.Body["chunk"].([]any) {
		e := c.(map[string]any)
		if e["room_id"] == published && (e["num_joined_members"] != float64(2) || e["join_rule"] != "public" || e["topic"] != "roses") {
			t.Fatalf("entry %v", e)
		}
	}
	t.Run("pagination covers every room once", func(t *testing.T) {
		first := s.Do(t, http.MethodGet, v3+"/publicRooms?limit=1", "", nil)
		next := first.String("next_batch")
		if len(first.Body["chunk"].([]any)) != 1 || next == "" {
			t.Fatalf("first page %s", first.Raw)
		}
		rest := s.Do(t, http.MethodGet, v3+"/publicRooms?limit=1&since="+url.QueryEscape(next), "", nil)
		all := append(names(first), names(rest)...)
		slices.Sort(all)
		if !slices.Equal(all, []string{"Chess", "Gardening club"}) || rest.String("next_batch") != "" {
			t.Fatalf("pages %v, next %q", all, rest.String("next_batch"))
		}
	})
	t.Run("search term", func(t *testing.T) {
		res := s.Do(t, http.MethodPost, v3+"/publicRooms", aliceTok, obj{"filter": obj{"generic_search_term": "ROSE"}})
		apptest.MustStatus(t, res, http.StatusOK)
		if got := names(res); !slices.Equal(got, []string{"Gardening club"}) {
			t.Fatalf("search found %v", got)
		}
	})
	t.Run("unpublish", func(t *testing.T) {
		res := s.Do(t, http.MethodPut, v3+"/directory/list/room/"+url.PathEscape(second), aliceTok, obj{"visibility": "private"})
		apptest.MustStatus(t, res, http.StatusOK)
		if got := names(s.Do(t, http.MethodGet, v3+"/publicRooms", "", nil)); !slices.Equal(got, []string{"Gardening club"}) {
			t.Fatalf("after unpublishing: %v", got)
		}
	})
	// Another server's directory is asked over federation (tests in
	// federation/reads_test.go); one that cannot be reached is a 502.
	if res := s.Do(t, http.MethodGet, v3+"/publicRooms?server="+unreachableServer, "", nil); res.Status != http.StatusBadGateway {
		t.Fatalf("directory of an unreachable server: %d", res.Status)
	}
}

func TestRoomUpgrade(t *testing.T) {
	for _, to := range []string{"11", "12"} {
		t.Run("to version "+to, func(t *testing.T) {
			s := apptest.Start(t)
			alice, aliceTok := s.Register(t, "alice", pw)
			_, bobTok := s.Register(t, "bob", pw)
			old := mustCreateRoom(t, s, aliceTok, obj{"visibility": "public", "room_version": "10", "name": "Old", "room_alias_name": "up"})
			mustPost(t, s, roomPath(old, "/join"), bobTok, nil, 200, "")
			mustPost(t, s, roomPath(old, "/upgrade"), bobTok, obj{"new_version": to}, 403, "M_FORBIDDEN")
			mustPost(t, s, roomPath(old, "/upgrade"), aliceTok, obj{"new_version": "99"}, 400, "M_UNSUPPORTED_ROOM_VERSION")
			mustPost(t, s, roomPath(old, "/upgrade"), aliceTok, obj{}, 400, "M_MISSING_PARAM")
			res := mustPost(t, s, roomPath(old, "/upgrade"), aliceTok, obj{"new_version": to}, 200, "")
			newRoom := res.String("replacement_room")

			oldState := stateOf(t, s, aliceTok, old)
			if oldState["m.room.tombstone|"]["content"].(map[string]any)["replacement_room"] != newRoom {
				t.Fatalf("tombstone %v", oldState["m.room.tombstone|"])
			}
			if lvl := oldState["m.room.power_levels|"]["content"].(map[string]any)["events_default"]; lvl != float64(50) {
				t.Fatalf("old room events_default %v", lvl)
			}
			mustPost(t, s, roomPath(old, "/invite"), bobTok, obj{"user_id": "@carol:parley.test"}, 403, "M_FORBIDDEN")

			st := stateOf(t, s, aliceTok, newRoom)
			create := st["m.room.create|"]["content"].(map[string]any)
			if create["room_version"] != to || create["predecessor"].(map[string]any)["room_id"] != old {
				t.Fatalf("new create %v", create)
			}
			if st["m.room.name|"]["content"].(map[string]any)["name"] != "Old" || st["m.room.join_rules|"] == nil {
				t.Fatal("state not carried over")
			}
			if st["m.room.member|"+alice] == nil {
				t.Fatal("upgrader not joined")
			}
			res = s.Do(t, http.MethodGet, aliasPath("#up:parley.test"), "", nil)
			if res.String("room_id") != newRoom {
				t.Fatalf("alias points at %s, want the new room", res.String("room_id"))
			}
			res = s.Do(t, http.MethodGet, v3+"/directory/list/room/"+url.PathEscape(newRoom), "", nil)
			if res.String("visibility") != "public" {
				t.Fatalf("new room not published: %s", res.Raw)
			}
			// Bob follows the tombstone.
			mustPost(t, s, roomPath(newRoom, "/join"), bobTok, nil, 200, "")
		})
	}
}

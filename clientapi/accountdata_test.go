package clientapi_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/parleyhq/parley/apptest"
)

func accountDataPath(user, room, typ string) string {
	if room == "" {
		return v3 + "/user/" + url.PathEscape(user) + "/account_data/" + url.PathEscape(typ)
	}
	return v3 + "/user/" + url.PathEscape(user) + "/rooms/" + url.PathEscape(room) + "/account_data/" + url.PathEscape(typ)
}

func tagsPath(user, room string, tag ...string) string {
	p := v3 + "/user/" + url.PathEscape(user) + "/rooms/" + url.PathEscape(room) + "/tags"
	for _, t := range tag {
		p += "/" + url.PathEscape(t)
	}
	return p
}

// eventTypes lists the types of events.
func eventTypes(evs []syncEvent) map[string]syncEvent {
	out := map[string]syncEvent{}
	for _, ev := range evs {
		out[ev.Type] = ev
	}
	return out
}

// globalAccountData decodes the top-level account_data of a sync.
func globalAccountData(t *testing.T, s *apptest.Server, token, since string) (map[string]syncEvent, string) {
	t.Helper()
	res := s.Do(t, http.MethodGet, syncQuery(since, "timeout", "10000"), token, nil)
	apptest.MustStatus(t, res, http.StatusOK)
	var body struct {
		NextBatch   string     `json:"next_batch"`
		AccountData syncEvents `json:"account_data"`
	}
	mustUnmarshal(t, res.Raw, &body)
	return eventTypes(body.AccountData.Events), body.NextBatch
}

func TestAccountDataEndpoints(t *testing.T) {
	s := apptest.Start(t)
	alice, aliceTok := s.Register(t, "alice", pw)
	_, bobTok := s.Register(t, "bob", pw)
	room := newRoom(t, s, aliceTok, nil)

	apptest.MustStatus(t, s.Do(t, http.MethodPut, accountDataPath(alice, "", "org.example.x"), aliceTok, obj{"a": 1}), http.StatusOK)
	apptest.MustStatus(t, s.Do(t, http.MethodPut, accountDataPath(alice, room, "org.example.r"), aliceTok, obj{"b": 2}), http.StatusOK)

	t.Run("reads back what was stored", func(t *testing.T) {
		res := s.Do(t, http.MethodGet, accountDataPath(alice, "", "org.example.x"), aliceTok, nil)
		apptest.MustStatus(t, res, http.StatusOK)
		if res.Body["a"] != float64(1) {
			t.Fatalf("global %s", res.Raw)
		}
		res = s.Do(t, http.MethodGet, accountDataPath(alice, room, "org.example.r"), aliceTok, nil)
		apptest.MustStatus(t, res, http.StatusOK)
		if res.Body["b"] != float64(2) {
			t.Fatalf("room %s", res.Raw)
		}
	})
	t.Run("refusals", func(t *testing.T) {
		for _, c := range []struct {
			name, method, path, token string
			body                      any
			status                    int
			code                      string
		}{
			{"another user's read", http.MethodGet, accountDataPath(alice, "", "org.example.x"), bobTok, nil, http.StatusForbidden, "M_FORBIDDEN"},
			{"another user's write", http.MethodPut, accountDataPath(alice, "", "org.example.x"), bobTok, obj{}, http.StatusForbidden, "M_FORBIDDEN"},
			{"another user's tags", http.MethodGet, tagsPath(alice, room), bobTok, nil, http.StatusForbidden, "M_FORBIDDEN"},
			{"absent type", http.MethodGet, accountDataPath(alice, "", "org.example.none"), aliceTok, nil, http.StatusNotFound, "M_NOT_FOUND"},
			{"m.fully_read by hand", http.MethodPut, accountDataPath(alice, room, "m.fully_read"), aliceTok, obj{"event_id": "$x"}, http.StatusMethodNotAllowed, "M_BAD_JSON"},
			{"m.push_rules by hand", http.MethodPut, accountDataPath(alice, "", "m.push_rules"), aliceTok, obj{}, http.StatusMethodNotAllowed, "M_BAD_JSON"},
			{"not an object", http.MethodPut, accountDataPath(alice, "", "org.example.x"), aliceTok, []int{1}, http.StatusBadRequest, "M_BAD_JSON"},
			{"bad ignore list", http.MethodPut, accountDataPath(alice, "", "m.ignored_user_list"), aliceTok, obj{"ignored_users": obj{"nobody": obj{}}}, http.StatusBadRequest, "M_BAD_JSON"},
			{"bad room id", http.MethodGet, accountDataPath(alice, "room", "org.example.r"), aliceTok, nil, http.StatusBadRequest, "M_INVALID_PARAM"},
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
	t.Run("tags", func(t *testing.T) {
		apptest.MustStatus(t, s.Do(t, http.MethodPut, tagsPath(alice, room, "u.work"), aliceTok, obj{"order": 0.5}), http.StatusOK)
		apptest.MustStatus(t, s.Do(t, http.MethodPut, tagsPath(alice, room, "m.favourite"), aliceTok, obj{}), http.StatusOK)
		res := s.Do(t, http.MethodGet, tagsPath(alice, room), aliceTok, nil)
		apptest.MustStatus(t, res, http.StatusOK)
		tags, _ := res.Body["tags"].(map[string]any)
		work, _ := tags["u.work"].(map[string]any)
		if len(tags) != 2 || work["order"] != 0.5 {
			t.Fatalf("tags %s", res.Raw)
		}
		apptest.MustStatus(t, s.Do(t, http.MethodDelete, tagsPath(alice, room, "u.work"), aliceTok, nil), http.StatusOK)
		res = s.Do(t, http.MethodGet, accountDataPath(alice, room, "m.tag"), aliceTok, nil)
		apptest.MustStatus(t, res, http.StatusOK)
		tags, _ = res.Body["tags"].(map[string]any)
		if _, ok := tags["u.work"]; ok || len(tags) != 1 {
			t.Fatalf("m.tag after delete %s", res.Raw)
		}
	})
}

func TestAccountDataInSync(t *testing.T) {
	s := apptest.Start(t)
	alice, aliceTok := s.Register(t, "alice", pw)
	bob, bobTok := s.Register(t, "bob", pw)
	room := newRoom(t, s, aliceTok, nil)
	apptest.MustStatus(t, s.Do(t, http.MethodPut, accountDataPath(alice, "", "org.example.a"), aliceTok, obj{"v": 1}), http.StatusOK)
	apptest.MustStatus(t, s.Do(t, http.MethodPut, accountDataPath(alice, "", "org.example.b"), aliceTok, obj{"v": 1}), http.StatusOK)
	apptest.MustStatus(t, s.Do(t, http.MethodPut, tagsPath(alice, room, "u.x"), aliceTok, obj{}), http.StatusOK)

	first := mustSync(t, s, aliceTok, "")
	global, since := globalAccountData(t, s, aliceTok, "")
	t.Run("initial sync has everything", func(t *testing.T) {
		if _, ok := global["org.example.a"]; !ok || global["org.example.b"].Type == "" {
			t.Fatalf("global account data %v", global)
		}
		jr := first.Rooms.Join[room]
		if jr.AccountData == nil || eventTypes(jr.AccountData.Events)["m.tag"].Type != "m.tag" {
			t.Fatalf("room account data %+v", jr.AccountData)
		}
	})
	t.Run("another user sees none of it", func(t *testing.T) {
		other, _ := globalAccountData(t, s, bobTok, "")
		if len(other) != 0 {
			t.Fatalf("%s sees %v", bob, other)
		}
	})
	t.Run("an incremental sync has only the change", func(t *testing.T) {
		apptest.MustStatus(t, s.Do(t, http.MethodPut, accountDataPath(alice, "", "org.example.b"), aliceTok, obj{"v": 2}), http.StatusOK)
		got, next := globalAccountData(t, s, aliceTok, since)
		if len(got) != 1 || got["org.example.b"].Content["v"] != float64(2) {
			t.Fatalf("incremental account data %v", got)
		}
		since = next
	})
	t.Run("a room tag change shows under the room", func(t *testing.T) {
		apptest.MustStatus(t, s.Do(t, http.MethodPut, tagsPath(alice, room, "u.y"), aliceTok, obj{}), http.StatusOK)
		body := mustSync(t, s, aliceTok, since, "timeout", "10000")
		jr, ok := body.Rooms.Join[room]
		if !ok || jr.AccountData == nil {
			t.Fatalf("room missing from %+v", body.Rooms.Join)
		}
		tag := eventTypes(jr.AccountData.Events)["m.tag"]
		tags, _ := tag.Content["tags"].(map[string]any)
		if _, ok := tags["u.y"]; !ok || len(jr.Timeline.Events) != 0 {
			t.Fatalf("m.tag %v, timeline %d events", tag.Content, len(jr.Timeline.Events))
		}
	})
}

package clientapi_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/parleyhq/parley/apptest"
)

// bodies returns the body of every m.room.message of a chunk, in order.
func msgBodies(res apptest.Response, key string) []string {
	var out []string
	list, _ := res.Body[key].([]any)
	for _, ev := range list {
		e := ev.(map[string]any)
		if e["type"] == "m.room.message" {
			if b, ok := e["content"].(map[string]any)["body"].(string); ok {
				out = append(out, b)
			}
		}
	}
	return out
}

func getMessages(t *testing.T, s *apptest.Server, token, room, query string) apptest.Response {
	t.Helper()
	res := s.Do(t, http.MethodGet, roomPath(room, "/messages?"+query), token, nil)
	apptest.MustStatus(t, res, http.StatusOK)
	return res
}

func TestMessagesPaginationSurvivesRestart(t *testing.T) {
	s := apptest.Start(t)
	_, token := s.Register(t, "alice", pw)
	room := mustCreateRoom(t, s, token, nil)
	var want []string
	for i := range 7 {
		want = append(want, fmt.Sprint("m", i))
		mustSend(t, s, token, room, fmt.Sprint("t", i), want[i])
	}
	// Backwards in pages of 3, restarting the server between pages.
	var got []string
	from := ""
	for page := 0; ; page++ {
		q := "dir=b&limit=3"
		if from != "" {
			q += "&from=" + url.QueryEscape(from)
		}
		res := getMessages(t, s, token, room, q)
		got = append(got, msgBodies(res, "chunk")...)
		from = res.String("end")
		if from == "" || len(res.Body["chunk"].([]any)) == 0 {
			break
		}
		if page == 0 {
			s.Restart(t)
		}
	}
	slices.Reverse(got)
	if !slices.Equal(got, want) {
		t.Fatalf("backwards pages gave %v, want %v", got, want)
	}
	// Forwards from the start.
	res := getMessages(t, s, token, room, "dir=f&limit=100")
	if fwd := msgBodies(res, "chunk"); !slices.Equal(fwd, want) {
		t.Fatalf("forwards gave %v, want %v", fwd, want)
	}
	first := res.Body["chunk"].([]any)[0].(map[string]any)["type"]
	if first != "m.room.create" {
		t.Fatalf("forward pagination starts with %v", first)
	}
	t.Run("to stops the page", func(t *testing.T) {
		latest := getMessages(t, s, token, room, "dir=b&limit=2")
		res := getMessages(t, s, token, room, "dir=f&limit=100&to="+url.QueryEscape(latest.String("end")))
		if got := msgBodies(res, "chunk"); !slices.Equal(got, want[:5]) {
			t.Fatalf("forwards up to the latest two gave %v", got)
		}
	})
	t.Run("refusals", func(t *testing.T) {
		for _, q := range []string{"dir=x", "dir=b&from=garbage", "dir=b&limit=-1", "dir=b&filter=%5B%5D"} {
			res := s.Do(t, http.MethodGet, roomPath(room, "/messages?"+q), token, nil)
			if res.Status != 400 {
				t.Errorf("%s: %d %s", q, res.Status, res.Raw)
			}
		}
	})
}

func TestMessagesFilter(t *testing.T) {
	s := apptest.Start(t)
	alice, aliceTok := s.Register(t, "alice", pw)
	bob, bobTok := s.Register(t, "bob", pw)
	room := mustCreateRoom(t, s, aliceTok, obj{"preset": "public_chat"})
	mustPost(t, s, roomPath(room, "/join"), bobTok, nil, 200, "")
	mustSend(t, s, aliceTok, room, "1", "from alice")
	mustSend(t, s, bobTok, room, "2", "from bob")
	res := s.Do(t, http.MethodPut, roomPath(room, "/send/m.room.message/3"), bobTok, obj{"msgtype": "m.image", "body": "pic", "url": "mxc://parley.test/x"})
	apptest.MustStatus(t, res, http.StatusOK)
	res = s.Do(t, http.MethodPut, roomPath(room, "/send/org.example.ping/4"), aliceTok, obj{})
	apptest.MustStatus(t, res, http.StatusOK)
	tests := []struct {
		name   string
		filter string
		want   []string // bodies, newest first
		types  int      // events in the chunk
	}{
		{"senders", fmt.Sprintf(`{"senders":[%q],"types":["m.room.message"]}`, bob), []string{"pic", "from bob"}, 2},
		{"not_senders", fmt.Sprintf(`{"not_senders":[%q],"types":["m.room.message"]}`, bob), []string{"from alice"}, 1},
		{"contains_url", `{"contains_url":true}`, []string{"pic"}, 1},
		{"wildcard types", `{"types":["org.example.*"]}`, nil, 1},
		{"not_types", `{"not_types":["m.room.*","org.*"]}`, nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := getMessages(t, s, aliceTok, room, "dir=b&limit=50&filter="+url.QueryEscape(tc.filter))
			if got := msgBodies(res, "chunk"); !slices.Equal(got, tc.want) {
				t.Errorf("bodies %v, want %v", got, tc.want)
			}
			if n := len(res.Body["chunk"].([]any)); n != tc.types {
				t.Errorf("%d events, want %d", n, tc.types)
			}
		})
	}
	t.Run("lazy_load_members returns the senders' member events", func(t *testing.T) {
		f := fmt.Sprintf(`{"lazy_load_members":true,"senders":[%q]}`, bob)
		res := getMessages(t, s, aliceTok, room, "dir=b&limit=50&filter="+url.QueryEscape(f))
		state, _ := res.Body["state"].([]any)
		if len(state) != 1 || state[0].(map[string]any)["state_key"] != bob {
			t.Fatalf("state %v", state)
		}
		_ = alice
	})
}

func TestHistoryVisibility(t *testing.T) {
	s := apptest.Start(t)
	_, aliceTok := s.Register(t, "alice", pw)
	bob, bobTok := s.Register(t, "bob", pw)
	_, eveTok := s.Register(t, "eve", pw)
	tests := []struct {
		visibility   string
		seesBefore   bool // bob, who joins after "before", sees it
		seesInvited  bool // bob sees what was sent while he was invited
		nonMemberSee bool // eve, never a member, reads /messages
	}{
		{"world_readable", true, true, true},
		{"shared", true, true, false},
		{"invited", false, true, false},
		{"joined", false, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.visibility, func(t *testing.T) {
			room := mustCreateRoom(t, s, aliceTok, obj{"initial_state": []obj{
				{"type": "m.room.history_visibility", "content": obj{"history_visibility": tc.visibility}}}})
			before := mustSend(t, s, aliceTok, room, "b"+tc.visibility, "before")
			mustPost(t, s, roomPath(room, "/invite"), aliceTok, obj{"user_id": bob}, 200, "")
			invited := mustSend(t, s, aliceTok, room, "i"+tc.visibility, "while invited")
			mustPost(t, s, roomPath(room, "/join"), bobTok, nil, 200, "")
			mustSend(t, s, aliceTok, room, "j"+tc.visibility, "joined")
			mustPost(t, s, roomPath(room, "/leave"), bobTok, nil, 200, "")
			mustSend(t, s, aliceTok, room, "a"+tc.visibility, "after leaving")

			var want []string
			if tc.seesBefore {
				want = append(want, "before")
			}
			if tc.seesInvited {
				want = append(want, "while invited")
			}
			want = append(want, "joined")
			if tc.visibility == "world_readable" {
				want = append(want, "after leaving")
			}
			res := getMessages(t, s, bobTok, room, "dir=f&limit=100")
			if got := msgBodies(res, "chunk"); !slices.Equal(got, want) {
				t.Errorf("bob sees %v, want %v", got, want)
			}
			for _, c := range []struct {
				ev   string
				sees bool
			}{{before, tc.seesBefore}, {invited, tc.seesInvited}} {
				res := s.Do(t, http.MethodGet, roomPath(room, "/event/", c.ev), bobTok, nil)
				if (res.Status == 200) != c.sees {
					t.Errorf("GET event: %d, want visible=%v", res.Status, c.sees)
				}
			}
			res = s.Do(t, http.MethodGet, roomPath(room, "/messages?dir=b"), eveTok, nil)
			if (res.Status == 200) != tc.nonMemberSee {
				t.Errorf("non-member /messages: %d, want visible=%v", res.Status, tc.nonMemberSee)
			}
			if tc.nonMemberSee && len(msgBodies(res, "chunk")) != 4 {
				t.Errorf("world readable: eve sees %v", msgBodies(res, "chunk"))
			}
			// Bob, having left, reads the state as he left it.
			st := stateOf(t, s, bobTok, room)
			if m := st["m.room.member|"+bob]["content"].(map[string]any)["membership"]; m != "leave" {
				t.Errorf("bob's state shows membership %v", m)
			}
		})
	}
}

func TestRedaction(t *testing.T) {
	for _, version := range []string{"5", "10", "11", "12"} {
		t.Run("room version "+version, func(t *testing.T) {
			s := apptest.Start(t)
			_, aliceTok := s.Register(t, "alice", pw)
			_, bobTok := s.Register(t, "bob", pw)
			room := mustCreateRoom(t, s, aliceTok, obj{"preset": "public_chat", "room_version": version})
			mustPost(t, s, roomPath(room, "/join"), bobTok, nil, 200, "")
			aliceMsg := mustSend(t, s, aliceTok, room, "1", "alice's")
			bobMsg := mustSend(t, s, bobTok, room, "2", "bob's")

			res := s.Do(t, http.MethodPut, roomPath(room, "/redact/", url.PathEscape(aliceMsg), "/r1"), bobTok, obj{})
			if res.Status != 403 || res.Errcode() != "M_FORBIDDEN" {
				t.Fatalf("bob redacts alice's event: %d %s", res.Status, res.Raw)
			}
			res = s.Do(t, http.MethodPut, roomPath(room, "/redact/", url.PathEscape(bobMsg), "/r2"), bobTok, obj{"reason": "oops"})
			apptest.MustStatus(t, res, http.StatusOK)
			own := res.String("event_id")
			again := s.Do(t, http.MethodPut, roomPath(room, "/redact/", url.PathEscape(bobMsg), "/r2"), bobTok, obj{"reason": "oops"})
			if again.String("event_id") != own {
				t.Fatalf("redaction retry gave %s, first %s", again.String("event_id"), own)
			}
			res = s.Do(t, http.MethodPut, roomPath(room, "/redact/", url.PathEscape(aliceMsg), "/r3"), aliceTok, nil)
			apptest.MustStatus(t, res, http.StatusOK)
			res = s.Do(t, http.MethodPut, roomPath(room, "/redact/", url.PathEscape("$unknown"), "/r4"), aliceTok, obj{})
			if res.Status != 404 {
				t.Fatalf("redacting an unknown event: %d", res.Status)
			}

			res = s.Do(t, http.MethodGet, roomPath(room, "/event/", url.PathEscape(bobMsg)), aliceTok, nil)
			apptest.MustStatus(t, res, http.StatusOK)
			if content := res.Body["content"].(map[string]any); len(content) != 0 {
				t.Fatalf("redacted event still has content %v", content)
			}
			because, _ := res.Body["unsigned"].(map[string]any)["redacted_because"].(map[string]any)
			if because["event_id"] != own || because["content"].(map[string]any)["reason"] != "oops" {
				t.Fatalf("redacted_because %v", because)
			}
			if msgBodies(getMessages(t, s, aliceTok, room, "dir=b&limit=50"), "chunk") != nil {
				t.Fatal("/messages still shows the redacted bodies")
			}
		})
	}
}

func TestContextAndTimestamp(t *testing.T) {
	s := apptest.Start(t)
	_, token := s.Register(t, "alice", pw)
	_, eveTok := s.Register(t, "eve", pw)
	room := mustCreateRoom(t, s, token, nil)
	var ids []string
	for i := range 5 {
		ids = append(ids, mustSend(t, s, token, room, fmt.Sprint(i), fmt.Sprint("c", i)))
	}
	res := s.Do(t, http.MethodGet, roomPath(room, "/context/", url.PathEscape(ids[2]), "?limit=2"), token, nil)
	apptest.MustStatus(t, res, http.StatusOK)
	if res.Body["event"].(map[string]any)["event_id"] != ids[2] {
		t.Fatalf("context event %v", res.Body["event"])
	}
	if b, a := msgBodies(res, "events_before"), msgBodies(res, "events_after"); !slices.Equal(b, []string{"c1"}) || !slices.Equal(a, []string{"c3"}) {
		t.Fatalf("before %v after %v", b, a)
	}
	if len(res.Body["state"].([]any)) == 0 || res.String("start") == "" || res.String("end") == "" {
		t.Fatalf("context lacks state or tokens: %s", res.Raw)
	}
	// The end token continues after c3.
	next := getMessages(t, s, token, room, "dir=f&from="+url.QueryEscape(res.String("end")))
	if got := msgBodies(next, "chunk"); !slices.Equal(got, []string{"c4"}) {
		t.Fatalf("after the context: %v", got)
	}
	if res := s.Do(t, http.MethodGet, roomPath(room, "/context/", url.PathEscape(ids[2])), eveTok, nil); res.Status != 404 {
		t.Fatalf("non-member context: %d", res.Status)
	}

	ev := s.Do(t, http.MethodGet, roomPath(room, "/event/", url.PathEscape(ids[3])), token, nil)
	ts := int64(ev.Body["origin_server_ts"].(float64))
	tsPath := func(ts int64, dir string) string {
		return "/_matrix/client/v1/rooms/" + url.PathEscape(room) + fmt.Sprintf("/timestamp_to_event?ts=%d&dir=%s", ts, dir)
	}
	res = s.Do(t, http.MethodGet, tsPath(ts+1_000_000, "b"), token, nil)
	apptest.MustStatus(t, res, http.StatusOK)
	if res.String("event_id") != ids[4] {
		t.Fatalf("latest event before the future is %s, want %s", res.String("event_id"), ids[4])
	}
	res = s.Do(t, http.MethodGet, tsPath(0, "f"), token, nil)
	apptest.MustStatus(t, res, http.StatusOK)
	if res.String("event_id") == "" {
		t.Fatal("no event after the epoch")
	}
	if res := s.Do(t, http.MethodGet, tsPath(ts+1_000_000, "f"), token, nil); res.Status != 404 {
		t.Fatalf("event after the future: %d", res.Status)
	}
	if res := s.Do(t, http.MethodGet, tsPath(ts, "x"), token, nil); res.Status != 400 {
		t.Fatalf("bad dir: %d", res.Status)
	}
}

func TestMessagesFromASyncToken(t *testing.T) {
	s := apptest.Start(t)
	_, token := s.Register(t, "alice", pw)
	room := mustCreateRoom(t, s, token, nil)
	mustSend(t, s, token, room, "1", "one")
	res := s.Do(t, http.MethodGet, v3+"/sync", token, nil)
	apptest.MustStatus(t, res, http.StatusOK)
	next := res.String("next_batch")
	mustSend(t, s, token, room, "2", "two")
	mustSend(t, s, token, room, "3", "three")
	tests := []struct {
		dir  string
		want []string
	}{
		{"b", []string{"one"}},
		{"f", []string{"two", "three"}},
	}
	for _, tc := range tests {
		t.Run("dir "+tc.dir, func(t *testing.T) {
			res := getMessages(t, s, token, room, "dir="+tc.dir+"&limit=100&from="+url.QueryEscape(next))
			if got := msgBodies(res, "chunk"); !slices.Equal(got, tc.want) {
				t.Fatalf("from next_batch %s: %v, want %v", next, got, tc.want)
			}
		})
	}
}

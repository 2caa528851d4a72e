package clientapi_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/parleyhq/parley/apptest"
)

func TestSendIsIdempotentPerDevice(t *testing.T) {
	s := apptest.Start(t)
	s.Register(t, "alice", pw)
	tok1, _ := mustLogin(t, s, "alice", pw, nil)
	tok2, _ := mustLogin(t, s, "alice", pw, nil)
	room := mustCreateRoom(t, s, tok1, nil)
	first := mustSend(t, s, tok1, room, "txn1", "hello")
	tests := []struct {
		name  string
		token string
		txn   string
		same  bool
	}{
		{"retry on the same device returns the same event", tok1, "txn1", true},
		{"same txn on another device is another event", tok2, "txn1", false},
		{"another txn is another event", tok1, "txn2", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := mustSend(t, s, tc.token, room, tc.txn, "hello")
			if (got == first) != tc.same {
				t.Fatalf("event %s, first %s, want same=%v", got, first, tc.same)
			}
		})
	}
	t.Run("transaction_id is shown to the sending device only", func(t *testing.T) {
		for _, c := range []struct {
			token string
			want  any
		}{{tok1, "txn1"}, {tok2, nil}} {
			res := s.Do(t, http.MethodGet, roomPath(room, "/event/", first), c.token, nil)
			apptest.MustStatus(t, res, http.StatusOK)
			unsigned, _ := res.Body["unsigned"].(map[string]any)
			if unsigned["transaction_id"] != c.want {
				t.Fatalf("transaction_id %v, want %v", unsigned["transaction_id"], c.want)
			}
			if res.Body["content"].(map[string]any)["body"] != "hello" || res.Body["room_id"] != room {
				t.Fatalf("event %s", res.Raw)
			}
		}
	})
}

func TestSendAndReadRefusals(t *testing.T) {
	s := apptest.Start(t)
	_, alice := s.Register(t, "alice", pw)
	_, eve := s.Register(t, "eve", pw)
	room := mustCreateRoom(t, s, alice, nil)
	msg := mustSend(t, s, alice, room, "t1", "secret")
	tests := []struct {
		name    string
		method  string
		path    string
		token   string
		body    any
		status  int
		errcode string
	}{
		{"non-member send", http.MethodPut, roomPath(room, "/send/m.room.message/x"), eve, obj{"body": "hi"}, 403, "M_FORBIDDEN"},
		{"non-member state write", http.MethodPut, roomPath(room, "/state/m.room.topic"), eve, obj{"topic": "x"}, 403, "M_FORBIDDEN"},
		{"non-member event read", http.MethodGet, roomPath(room, "/event/", msg), eve, nil, 404, "M_NOT_FOUND"},
		{"non-member state read", http.MethodGet, roomPath(room, "/state"), eve, nil, 403, "M_FORBIDDEN"},
		{"non-member state event read", http.MethodGet, roomPath(room, "/state/m.room.create/"), eve, nil, 403, "M_FORBIDDEN"},
		{"unknown room send", http.MethodPut, roomPath("!nope:parley.test", "/send/m.room.message/x"), alice, obj{}, 404, "M_NOT_FOUND"},
		{"unknown room state", http.MethodGet, roomPath("!nope:parley.test", "/state"), alice, nil, 404, "M_NOT_FOUND"},
		{"unknown event", http.MethodGet, roomPath(room, "/event/$nope"), alice, nil, 404, "M_NOT_FOUND"},
		{"malformed room id", http.MethodGet, roomPath("nope", "/state"), alice, nil, 400, "M_INVALID_PARAM"},
		{"content not an object", http.MethodPut, roomPath(room, "/send/m.room.message/y"), alice, "[1]", 400, "M_BAD_JSON"},
		{"float in content", http.MethodPut, roomPath(room, "/send/m.room.message/z"), alice, `{"n":1.5}`, 400, "M_BAD_JSON"},
		{"member state key not a user id", http.MethodPut, roomPath(room, "/state/m.room.member/bob"), alice, obj{"membership": "join"}, 400, "M_BAD_JSON"},
		{"power levels with a state key", http.MethodPut, roomPath(room, "/state/m.room.power_levels/x"), alice, obj{}, 400, "M_BAD_JSON"},
		{"bad history visibility", http.MethodPut, roomPath(room, "/state/m.room.history_visibility"), alice, obj{"history_visibility": "all"}, 400, "M_BAD_JSON"},
		{"canonical alias of nothing", http.MethodPut, roomPath(room, "/state/m.room.canonical_alias"), alice, obj{"alias": "#none:parley.test"}, 400, "M_BAD_ALIAS"},
		{"missing state key event", http.MethodGet, roomPath(room, "/state/m.room.name/"), alice, nil, 404, "M_NOT_FOUND"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := s.Do(t, tc.method, tc.path, tc.token, tc.body)
			if res.Status != tc.status || res.Errcode() != tc.errcode {
				t.Fatalf("%d %s, want %d %s: %s", res.Status, res.Errcode(), tc.status, tc.errcode, res.Raw)
			}
		})
	}
}

func TestStatePutAndGet(t *testing.T) {
	s := apptest.Start(t)
	_, token := s.Register(t, "alice", pw)
	room := mustCreateRoom(t, s, token, nil)
	res := s.Do(t, http.MethodPut, roomPath(room, "/state/m.room.topic/"), token, obj{"topic": "first"})
	apptest.MustStatus(t, res, http.StatusOK)
	res = s.Do(t, http.MethodPut, roomPath(room, "/state/m.room.topic"), token, obj{"topic": "second"})
	apptest.MustStatus(t, res, http.StatusOK)
	second := res.String("event_id")
	res = s.Do(t, http.MethodPut, roomPath(room, "/state/org.example.custom/key%2Fwith%2Fslashes"), token, obj{"v": 1})
	apptest.MustStatus(t, res, http.StatusOK)

	res = s.Do(t, http.MethodGet, roomPath(room, "/state/m.room.topic/"), token, nil)
	apptest.MustStatus(t, res, http.StatusOK)
	if res.String("topic") != "second" {
		t.Fatalf("topic %s", res.Raw)
	}
	res = s.Do(t, http.MethodGet, roomPath(room, "/state/m.room.topic?format=event"), token, nil)
	apptest.MustStatus(t, res, http.StatusOK)
	prev, _ := res.Body["unsigned"].(map[string]any)["prev_content"].(map[string]any)
	if res.String("event_id") != second || prev["topic"] != "first" {
		t.Fatalf("format=event: %s", res.Raw)
	}
	res = s.Do(t, http.MethodGet, roomPath(room, "/state/org.example.custom/key%2Fwith%2Fslashes"), token, nil)
	apptest.MustStatus(t, res, http.StatusOK)
	if res.Body["v"] != float64(1) {
		t.Fatalf("custom state %s", res.Raw)
	}
	if st := stateOf(t, s, token, room); st["org.example.custom|key/with/slashes"] == nil {
		t.Fatalf("custom state missing from /state")
	}
}

func TestMalformedTransactionAndRedactedState(t *testing.T) {
	s := apptest.Start(t)
	_, token := s.Register(t, "alice", pw)
	room := mustCreateRoom(t, s, token, obj{"topic": "to be redacted"})
	long := strings.Repeat("x", 256)
	res := s.Do(t, http.MethodPut, roomPath(room, "/send/m.room.message/", long), token, obj{"body": "x"})
	if res.Status != 400 || res.Errcode() != "M_INVALID_PARAM" {
		t.Fatalf("256-byte txn id: %d %s", res.Status, res.Raw)
	}
	res = s.Do(t, http.MethodPut, roomPath(room, "/send/m.room.message/"), token, obj{"body": "x"})
	if res.Status != 404 && res.Status != 405 {
		t.Fatalf("empty txn id: %d %s", res.Status, res.Raw)
	}
	topic := s.Do(t, http.MethodGet, roomPath(room, "/state/m.room.topic?format=event"), token, nil)
	apptest.MustStatus(t, topic, http.StatusOK)
	res = s.Do(t, http.MethodPut, roomPath(room, "/redact/", url.PathEscape(topic.String("event_id")), "/r"), token, obj{})
	apptest.MustStatus(t, res, http.StatusOK)
	// Current state serves the redacted topic, before and after a restart
	// (the cache and the database agree).
	for _, restart := range []bool{false, true} {
		if restart {
			s.Restart(t)
		}
		res = s.Do(t, http.MethodGet, roomPath(room, "/state/m.room.topic"), token, nil)
		apptest.MustStatus(t, res, http.StatusOK)
		if len(res.Body) != 0 {
			t.Fatalf("redacted topic still has content %s (restart %v)", res.Raw, restart)
		}
	}
}

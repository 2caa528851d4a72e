package clientapi_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/clientapi"
)

func TestWebSocketAuthentication(t *testing.T) {
	s := apptest.Start(t)
	alice, tok := s.Register(t, "alice", pw)

	t.Run("a bearer header on the upgrade authenticates", func(t *testing.T) {
		c := dialWS(t, s, wsDialOpts{token: tok})
		if f := c.next(); f.Type != "authenticated" || f.UserID != alice || f.DeviceID == "" {
			t.Errorf("first frame %+v", f)
		}
	})
	t.Run("an auth frame first authenticates", func(t *testing.T) {
		c := dialWS(t, s, wsDialOpts{})
		c.send(map[string]any{"type": "auth", "access_token": tok})
		if f := c.next(); f.Type != "authenticated" || f.UserID != alice {
			t.Errorf("first frame %+v", f)
		}
		// And the connection works: a request answers as alice.
		f := c.request("w", http.MethodGet, v3+"/account/whoami", nil)
		if f.Status != http.StatusOK || f.object(t)["user_id"] != alice {
			t.Errorf("whoami %d %s", f.Status, f.Body)
		}
	})

	failures := []struct {
		name, reason string
		header       string
		first        any
	}{
		{"a wrong token in the header", "M_UNKNOWN_TOKEN", "not-a-token", nil},
		{"a wrong token in the auth frame", "M_UNKNOWN_TOKEN", "", map[string]any{"type": "auth", "access_token": "nope"}},
		{"an auth frame without a token", "M_MISSING_TOKEN", "", map[string]any{"type": "auth"}},
		{"a request before any auth", "M_MISSING_TOKEN", "", map[string]any{"type": "request", "id": "1", "method": "GET", "path": v3 + "/account/whoami"}},
		{"a sync frame before any auth", "M_MISSING_TOKEN", "", map[string]any{"type": "sync"}},
		{"a first frame that is not JSON", "M_MISSING_TOKEN", "", "hello"},
	}
	for _, tc := range failures {
		t.Run(tc.name+" closes with 4401", func(t *testing.T) {
			c := dialWS(t, s, wsDialOpts{token: tc.header})
			if tc.first != nil {
				c.send(tc.first)
			}
			ce := c.closed()
			if ce.Code != 4401 || !strings.HasPrefix(ce.Reason, tc.reason) {
				t.Errorf("closed with %d %q, want 4401 %s…", ce.Code, ce.Reason, tc.reason)
			}
		})
	}
	t.Run("a logged-out token ends the stream with 4401", func(t *testing.T) {
		_, other := s.Register(t, "leaver", pw)
		c := connectWS(t, s, other)
		c.send(map[string]any{"type": "sync"})
		c.nextSync()
		f := c.request("out", http.MethodPost, v3+"/logout", map[string]any{})
		if f.Status != http.StatusOK {
			t.Fatalf("logout %d %s", f.Status, f.Body)
		}
		// Every Sync call of the stream checks the token again; a restart
		// makes one at once.
		c.send(map[string]any{"type": "sync"})
		if ce := c.closed(); ce.Code != 4401 || !strings.HasPrefix(ce.Reason, "M_UNKNOWN_TOKEN") {
			t.Errorf("closed with %d %q", ce.Code, ce.Reason)
		}
	})
}

func TestWebSocketAuthTimeout(t *testing.T) {
	t.Cleanup(clientapi.SetWebSocketAuthTimeout(100 * time.Millisecond))
	s := apptest.Start(t)
	c := dialWS(t, s, wsDialOpts{})
	// Nothing sent: the server gives up waiting for the auth frame.
	if ce := c.closed(); ce.Code != 4401 || !strings.HasPrefix(ce.Reason, "M_MISSING_TOKEN") {
		t.Errorf("closed with %d %q, want 4401 M_MISSING_TOKEN…", ce.Code, ce.Reason)
	}
}

func TestWebSocketBadFrames(t *testing.T) {
	s := apptest.Start(t)
	_, tok := s.Register(t, "alice", pw)
	big := `{"type":"request","id":"x","method":"POST","path":"/x","body":{"pad":"` + strings.Repeat("a", int(s.Config.Client.MaxBodyBytes)+128<<10) + `"}}`

	cases := []struct {
		name   string
		frame  any
		binary bool
		code   websocket.StatusCode
		reason string
	}{
		{name: "an unknown frame type", frame: map[string]any{"type": "subscribe"}, code: 4400, reason: "M_UNRECOGNIZED"},
		{name: "a frame without a type", frame: map[string]any{"id": "1"}, code: 4400, reason: "M_UNRECOGNIZED"},
		{name: "a frame that is not JSON", frame: "{not json", code: 4400, reason: "M_NOT_JSON"},
		{name: "a JSON frame that is not an object", frame: `["request"]`, code: 4400, reason: "M_NOT_JSON"},
		{name: "a field of the wrong type", frame: `{"type":"request","id":7}`, code: 4400, reason: "M_BAD_JSON"},
		{name: "a request without an id", frame: map[string]any{"type": "request", "method": "GET", "path": "/x"}, code: 4400, reason: "M_BAD_JSON"},
		{name: "a second auth frame", frame: map[string]any{"type": "auth", "access_token": tok}, code: 4400, reason: "M_UNRECOGNIZED"},
		{name: "an oversized frame", frame: big, code: websocket.StatusMessageTooBig},
		{name: "a binary frame", frame: "{}", binary: true, code: websocket.StatusUnsupportedData, reason: "M_NOT_JSON"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := connectWS(t, s, tok)
			if tc.binary {
				if err := c.conn.Write(t.Context(), websocket.MessageBinary, []byte(tc.frame.(string))); err != nil {
					t.Fatal(err)
				}
			} else {
				c.send(tc.frame)
			}
			ce := c.closed()
			if ce.Code != tc.code || !strings.HasPrefix(ce.Reason, tc.reason) {
				t.Errorf("closed with %d %q, want %d %s…", ce.Code, ce.Reason, tc.code, tc.reason)
			}
		})
	}
}

// TestWebSocketRequestsAnswerAsHTTP sends the same requests over HTTP and
// over the WebSocket and compares the answers.
func TestWebSocketRequestsAnswerAsHTTP(t *testing.T) {
	s := apptest.Start(t)
	_, tok := s.Register(t, "alice", pw)
	room := newRoom(t, s, tok, obj{"preset": "private_chat"})
	c := connectWS(t, s, tok)
	sendPath := v3 + "/rooms/" + url.PathEscape(room) + "/send/m.room.message/"

	t.Run("a send answers the event id, and the txnId is shared with HTTP (same device)", func(t *testing.T) {
		f := c.request("s1", http.MethodPut, sendPath+"txn-ws", obj{"msgtype": "m.text", "body": "over ws"})
		if f.Status != http.StatusOK {
			t.Fatalf("ws send %d %s", f.Status, f.Body)
		}
		again := s.Do(t, http.MethodPut, sendPath+"txn-ws", tok, obj{"msgtype": "m.text", "body": "over ws"})
		apptest.MustStatus(t, again, http.StatusOK)
		if got, want := f.object(t)["event_id"], again.String("event_id"); got != want || want == "" {
			t.Errorf("ws event id %v, http retry %v: want the same", got, want)
		}
	})

	exact := []struct {
		name, method, path string
		body               any
		status             int
		errcode            string
	}{
		{"an unknown endpoint is 404 M_UNRECOGNIZED", http.MethodGet, v3 + "/no/such/endpoint", nil, 404, "M_UNRECOGNIZED"},
		{"a wrong method is 405 M_UNRECOGNIZED", http.MethodDelete, v3 + "/account/whoami", nil, 405, "M_UNRECOGNIZED"},
		{"a send to an unknown room is a Matrix error", http.MethodPut, v3 + "/rooms/" + url.PathEscape("!nope:"+apptest.ServerName) + "/send/m.room.message/t9", obj{"msgtype": "m.text", "body": "x"}, 0, ""},
		{"a body of the wrong shape is M_BAD_JSON", http.MethodPost, v3 + "/createRoom", obj{"name": 5}, 400, "M_BAD_JSON"},
		{"a GET with a query answers the same", http.MethodGet, v3 + "/rooms/" + url.PathEscape(room) + "/messages?dir=b&limit=1", nil, 0, ""},
	}
	for i, tc := range exact {
		t.Run(tc.name, func(t *testing.T) {
			res := s.Do(t, tc.method, tc.path, tok, tc.body)
			f := c.request("e"+string(rune('a'+i)), tc.method, tc.path, tc.body)
			if f.Status != res.Status {
				t.Errorf("status ws %d, http %d", f.Status, res.Status)
			}
			if tc.status != 0 && f.Status != tc.status {
				t.Errorf("status %d, want %d", f.Status, tc.status)
			}
			var wsBody map[string]any
			_ = json.Unmarshal(f.Body, &wsBody)
			if !reflect.DeepEqual(withoutAge(wsBody), withoutAge(res.Body)) {
				t.Errorf("bodies differ:\n ws   %s\n http %s", f.Body, res.Raw)
			}
			if tc.errcode != "" && f.object(t)["errcode"] != tc.errcode {
				t.Errorf("errcode %v, want %s", f.object(t)["errcode"], tc.errcode)
			}
		})
	}

	t.Run("a UIA endpoint answers 401 with the same flows", func(t *testing.T) {
		who := s.Do(t, http.MethodGet, v3+"/account/whoami", tok, nil)
		path := v3 + "/devices/" + url.PathEscape(who.String("device_id"))
		res := s.Do(t, http.MethodDelete, path, tok, obj{})
		f := c.request("uia", http.MethodDelete, path, obj{})
		if f.Status != http.StatusUnauthorized || res.Status != http.StatusUnauthorized {
			t.Fatalf("status ws %d, http %d, want 401", f.Status, res.Status)
		}
		ws := f.object(t)
		if ws["session"] == "" || ws["session"] == nil {
			t.Error("no UIA session")
		}
		if !reflect.DeepEqual(ws["flows"], res.Body["flows"]) || !reflect.DeepEqual(ws["params"], res.Body["params"]) {
			t.Errorf("flows differ:\n ws   %s\n http %s", f.Body, res.Raw)
		}
	})
}

// withoutAge drops unsigned.age from every event of a body: the one field
// that depends on when the answer was made.
func withoutAge(body map[string]any) map[string]any {
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if u, ok := x["unsigned"].(map[string]any); ok {
				delete(u, "age")
			}
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(body)
	return body
}

package federation

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/federation/keyring"
	"github.com/parleyhq/parley/federation/xmatrix"
	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/mxerr"
	"github.com/parleyhq/parley/rooms"
	"github.com/parleyhq/parley/rooms/event"
	"github.com/parleyhq/parley/rooms/roomversion"
	"github.com/parleyhq/parley/rooms/signing"
)

// apiKeyStore is an in-memory keyring.Store.
type apiKeyStore struct {
	mu   sync.Mutex
	keys []keyring.StoredKey
}

func (s *apiKeyStore) ServerKeys(_ context.Context, server id.ServerName) ([]keyring.StoredKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []keyring.StoredKey
	for _, k := range s.keys {
		if k.Server == server {
			out = append(out, k)
		}
	}
	return out, nil
}

func (s *apiKeyStore) StoreServerKeys(_ context.Context, keys []keyring.StoredKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = append(s.keys, keys...)
	return nil
}

// peers serves the key documents of in-memory keyrings.
type peers map[id.ServerName]*keyring.Keyring

func (p peers) DoUnsigned(_ context.Context, dest id.ServerName, _, path string, _, resp any) error {
	kr, ok := p[dest]
	if !ok || path != "/_matrix/key/v2/server" {
		return errors.New("unreachable")
	}
	*resp.(*[]byte) = kr.KeyDocument()
	return nil
}

func newKeyring(t *testing.T, name id.ServerName, p peers) *keyring.Keyring {
	t.Helper()
	k, err := signing.Generate("ed25519:k1")
	if err != nil {
		t.Fatal(err)
	}
	kr := keyring.New(keyring.Config{ServerName: name, Key: k}, &apiKeyStore{}, p, slog.New(slog.NewTextHandler(io.Discard, nil)))
	p[name] = kr
	return kr
}

type heads map[id.RoomID]*rooms.Head

func (h heads) Head(_ context.Context, room id.RoomID) (*rooms.Head, error) {
	if hd, ok := h[room]; ok {
		return hd, nil
	}
	return nil, rooms.ErrRoomNotFound
}

type testAPI struct {
	*API
	hs1, hs2 *keyring.Keyring
	woken    chan id.ServerName
}

func newTestAPI(t *testing.T, h heads) *testAPI {
	return newTestAPIWith(t, h, nil)
}

func newTestAPIWith(t *testing.T, h heads, reg prometheus.Registerer) *testAPI {
	t.Helper()
	p := peers{}
	hs1, hs2 := newKeyring(t, "hs1.test", p), newKeyring(t, "hs2.test", p)
	cfg := config.Defaults()
	cfg.ServerName = "hs2.test"
	woken := make(chan id.ServerName, 10)
	a := New(Deps{Config: &cfg, Keyring: hs2, Heads: h, Registry: reg,
		Logger:           slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnInboundRequest: func(o id.ServerName) { woken <- o }})
	// An authenticated test endpoint echoing what the handler sees.
	a.router.Group(func(r chi.Router) {
		r.Use(a.authenticate)
		r.Put("/_matrix/federation/v1/test/{x}", func(w http.ResponseWriter, r *http.Request) {
			streamed, _ := io.ReadAll(r.Body)
			var v map[string]any
			if err := a.decodeJSON(w, r, &v); err != nil {
				a.writeError(w, r, err)
				return
			}
			writeJSON(w, http.StatusOK, map[string]any{"origin": Origin(r.Context()), "body": string(body(r)), "streamed": string(streamed)})
		})
	})
	return &testAPI{API: a, hs1: hs1, hs2: hs2, woken: woken}
}

func (ta *testAPI) do(t *testing.T, method, target string, content []byte, auth ...string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if content != nil {
		rd = bytes.NewReader(content)
	}
	req := httptest.NewRequest(method, target, rd)
	for _, h := range auth {
		req.Header.Add("Authorization", h)
	}
	rec := httptest.NewRecorder()
	ta.ServeHTTP(rec, req)
	var out map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	return rec.Code, out
}

func TestUnrecognized(t *testing.T) {
	ta := newTestAPI(t, nil)
	for _, tt := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/_matrix/federation/v1/nope", 404},
		{"GET", "/elsewhere", 404},
		{"POST", "/_matrix/key/v2/server", 405},
		{"DELETE", "/_matrix/federation/v1/version", 405},
		// Unknown paths are refused before authentication.
		{"GET", "/_matrix/federation/v1/test/x", 405},
	} {
		status, body := ta.do(t, tt.method, tt.path, nil)
		if status != tt.status || body["errcode"] != "M_UNRECOGNIZED" {
			t.Errorf("%s %s = %d %v, want %d M_UNRECOGNIZED", tt.method, tt.path, status, body, tt.status)
		}
	}
}

func TestVersionAndKeys(t *testing.T) {
	ta := newTestAPI(t, nil)
	status, body := ta.do(t, "GET", "/_matrix/federation/v1/version", nil)
	if server, _ := body["server"].(map[string]any); status != 200 || server["name"] != "Parley" {
		t.Errorf("version = %d %v", status, body)
	}
	for _, path := range []string{"/_matrix/key/v2/server", "/_matrix/key/v2/server/ed25519:k1"} {
		req := httptest.NewRequest("GET", path, nil)
		rec := httptest.NewRecorder()
		ta.ServeHTTP(rec, req)
		keys, err := keyring.ParseKeyResponse(rec.Body.Bytes(), "hs2.test", time.Now())
		if rec.Code != 200 || err != nil || len(keys) != 1 || !keys[0].Key.Equal(ta.hs2.SigningKey().Public()) {
			t.Errorf("%s = %d %s: %v", path, rec.Code, rec.Body, err)
		}
	}
	// Notary: hs2 serves hs1's keys, countersigned.
	for _, tt := range []struct{ method, path, body string }{
		{"POST", "/_matrix/key/v2/query", `{"server_keys":{"hs1.test":{}}}`},
		{"GET", "/_matrix/key/v2/query/hs1.test", ""},
		{"GET", "/_matrix/key/v2/query/hs1.test?minimum_valid_until_ts=1", ""},
	} {
		var content []byte
		if tt.body != "" {
			content = []byte(tt.body)
		}
		status, body := ta.do(t, tt.method, tt.path, content)
		list, _ := body["server_keys"].([]any)
		if status != 200 || len(list) != 1 {
			t.Fatalf("%s %s = %d %v", tt.method, tt.path, status, body)
		}
		raw, _ := json.Marshal(list[0])
		if _, err := keyring.ParseKeyResponse(raw, "hs1.test", time.Now()); err != nil {
			t.Errorf("%s: %v", tt.path, err)
		}
		if !strings.Contains(string(raw), `"hs2.test":{"ed25519:k1"`) {
			t.Errorf("%s: not countersigned by hs2: %s", tt.path, raw)
		}
	}
	for _, tt := range []struct{ body, errcode string }{
		{`{}`, "M_MISSING_PARAM"},
		{`{"server_keys":{"bad name":{}}}`, "M_INVALID_PARAM"},
		{`[1]`, "M_BAD_JSON"},
		{`{nope`, "M_NOT_JSON"},
	} {
		status, body := ta.do(t, "POST", "/_matrix/key/v2/query", []byte(tt.body))
		if status != 400 || body["errcode"] != tt.errcode {
			t.Errorf("query %s = %d %v, want %s", tt.body, status, body, tt.errcode)
		}
	}
}

func TestAuthentication(t *testing.T) {
	ta := newTestAPI(t, nil)
	content := []byte(`{"hello":"world"}`)
	target := "/_matrix/federation/v1/test/a%2Fb?q=1"
	good, err := xmatrix.Sign(ta.hs1.SigningKey(), "hs1.test", "hs2.test", "PUT", target, content)
	if err != nil {
		t.Fatal(err)
	}
	status, body := ta.do(t, "PUT", target, content, good)
	if status != 200 || body["origin"] != "hs1.test" || body["body"] != string(content) || body["streamed"] != string(content) {
		t.Fatalf("signed request = %d %v", status, body)
	}
	select {
	case o := <-ta.woken:
		if o != "hs1.test" {
			t.Errorf("OnInboundRequest(%s)", o)
		}
	default:
		t.Error("OnInboundRequest not called")
	}

	forger, _ := signing.Generate("ed25519:k1")
	forged, _ := xmatrix.Sign(forger, "hs1.test", "hs2.test", "PUT", target, content)
	unknownKey, _ := xmatrix.Sign(forger, "hs1.test", "hs2.test", "PUT", target, content)
	unknownKey = strings.Replace(unknownKey, `key="ed25519:k1"`, `key="ed25519:other"`, 1)
	unknownServer, _ := xmatrix.Sign(forger, "hs9.test", "hs2.test", "PUT", target, content)
	elsewhere, _ := xmatrix.Sign(ta.hs1.SigningKey(), "hs1.test", "hs3.test", "PUT", target, content)
	for name, auth := range map[string][]string{
		"none":                  nil,
		"bearer":                {"Bearer abc"},
		"forged signature":      {forged},
		"unknown key id":        {unknownKey},
		"unreachable server":    {unknownServer},
		"for another server":    {elsewhere},
		"malformed":             {`X-Matrix origin=hs1.test`},
		"signed for other body": {good},
	} {
		c := content
		if name == "signed for other body" {
			c = []byte(`{"hello":"moon"}`)
		}
		status, body := ta.do(t, "PUT", target, c, auth...)
		if status != 401 || body["errcode"] != "M_UNAUTHORIZED" {
			t.Errorf("%s: %d %v, want 401 M_UNAUTHORIZED", name, status, body)
		}
	}
	big := bytes.Repeat([]byte("a"), MaxRequestBytes+1)
	if status, body := ta.do(t, "PUT", target, big, good); status != 413 || body["errcode"] != "M_TOO_LARGE" {
		t.Errorf("oversized body: %d %v", status, body)
	}
	notJSON := []byte(`{"hello"`)
	bad, _ := xmatrix.Sign(ta.hs1.SigningKey(), "hs1.test", "hs2.test", "PUT", target, nil)
	if status, body := ta.do(t, "PUT", target, notJSON, bad); status != 400 || body["errcode"] != "M_NOT_JSON" {
		t.Errorf("not JSON: %d %v", status, body)
	}
}

func TestCheckServerACL(t *testing.T) {
	v, _ := roomversion.Lookup("11")
	k, _ := signing.Generate("ed25519:k1")
	sk := ""
	acl, err := event.Build(v, event.Proto{Sender: "@a:hs2.test", Type: "m.room.server_acl", StateKey: &sk,
		RoomID: "!r:hs2.test", Content: json.RawMessage(`{"allow":["*"],"deny":["evil.test","*.bad.test"],"allow_ip_literals":false}`),
		AuthEvents: event.Refs("$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), PrevEvents: event.Refs("$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), Depth: 2, OriginServerTS: 1}, "hs2.test", k)
	if err != nil {
		t.Fatal(err)
	}
	h := heads{
		"!r:hs2.test":    {RoomID: "!r:hs2.test", State: rooms.State{}.With(acl)},
		"!open:hs2.test": {RoomID: "!open:hs2.test", State: rooms.State{}},
	}
	ta := newTestAPI(t, h)
	ctx := context.Background()
	for _, tt := range []struct {
		room    id.RoomID
		origin  id.ServerName
		allowed bool
	}{
		{"!r:hs2.test", "hs1.test", true},
		{"!r:hs2.test", "evil.test", false},
		{"!r:hs2.test", "x.bad.test:8448", false},
		{"!r:hs2.test", "1.2.3.4", false},
		{"!open:hs2.test", "evil.test", true},
		{"!unknown:hs2.test", "evil.test", true},
	} {
		err := ta.CheckServerACL(ctx, tt.room, tt.origin)
		if tt.allowed && err != nil || !tt.allowed && !errors.Is(err, mxerr.Forbidden) {
			t.Errorf("CheckServerACL(%s, %s) = %v, want allowed %v", tt.room, tt.origin, err, tt.allowed)
		}
	}
}

func TestMetricsByRoutePattern(t *testing.T) {
	reg := prometheus.NewRegistry()
	ta := newTestAPIWith(t, nil, reg)
	ta.do(t, "GET", "/_matrix/key/v2/server/ed25519:k1", nil)
	ta.do(t, "GET", "/_matrix/key/v2/server/ed25519:k2", nil)
	ta.do(t, "PUT", "/_matrix/federation/v1/test/x", []byte(`{}`))
	ta.do(t, "GET", "/nope/1", nil)
	want := `
# HELP parley_http_requests_total HTTP requests served, by route, method and status.
# TYPE parley_http_requests_total counter
parley_http_requests_total{api="federation",method="GET",route="/_matrix/key/v2/server/{keyId}",status="200"} 2
parley_http_requests_total{api="federation",method="GET",route="unmatched",status="404"} 1
parley_http_requests_total{api="federation",method="PUT",route="/_matrix/federation/v1/test/{x}",status="401"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "parley_http_requests_total"); err != nil {
		t.Error(err)
	}
}

// TestSlowBodyCutOff: a body that trickles in is cut off after the body
// timeout with 408, over a real connection, on authenticated and
// unauthenticated routes.
func TestSlowBodyCutOff(t *testing.T) {
	ta := newTestAPI(t, nil)
	ta.bodyTimeout = 200 * time.Millisecond
	srv := httptest.NewServer(ta)
	defer srv.Close()
	for _, target := range []string{"PUT /_matrix/federation/v1/test/x", "POST /_matrix/key/v2/query"} {
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(conn, target+" HTTP/1.1\r\nHost: hs2.test\r\nContent-Length: 100\r\n\r\n{\"a\":")
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%s: no answer to a trickled body: %v", target, err)
		}
		res.Body.Close()
		conn.Close()
		if res.StatusCode != http.StatusRequestTimeout {
			t.Errorf("%s: status %d, want 408", target, res.StatusCode)
		}
	}
}

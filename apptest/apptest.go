// Package apptest starts real Parley servers for end-to-end tests: the same
// app.App that `parley serve` runs, on a fresh database of the shared test
// PostgreSQL, with every listener on a free loopback port.
package apptest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/parleyhq/parley/app"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/federation/fedtest"
	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/storage/pgtest"
)

// ServerName is the server name of test servers unless a test changes it.
const ServerName = "parley.test"

// Server is one running test server.
type Server struct {
	Config *config.Config
	// URL is the client API's base URL, http://127.0.0.1:port.
	URL string
	App *app.App
	// Name is the server name; FederationURL the federation listener's
	// base URL, https://127.0.0.1:port ("" when it is off).
	Name          id.ServerName
	FederationURL string
	// CA signed the federation certificate (StartFederation only).
	CA *fedtest.CA

	cancel context.CancelFunc // stops Run; nil once stopped
	done   chan error         // Run's result
}

// Start runs a server on a database of its own. mutate, when given, changes
// the configuration before start (rate limits are off unless it turns them
// on). The server stops when the test ends.
func Start(t testing.TB, mutate ...func(*config.Config)) *Server {
	t.Helper()
	cfg := config.Defaults()
	cfg.ServerName = ServerName
	cfg.DataDir = t.TempDir()
	cfg.Database.URL = pgtest.NewDatabase(t)
	cfg.Database.MaxConns = 8
	cfg.Listen.Client = "127.0.0.1:0"
	cfg.Listen.Federation = "127.0.0.1:0"
	cfg.Listen.Metrics = "127.0.0.1:0"
	cfg.RateLimits.Enabled = false
	cfg.Client.ShutdownTimeout = 5 * time.Second
	for _, m := range mutate {
		m(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("apptest: %v", err)
	}
	s := &Server{Config: &cfg}
	s.start(t)
	t.Cleanup(func() { s.Stop(t) })
	return s
}

func (s *Server) start(t testing.TB) {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := app.New(context.Background(), s.Config, logger)
	if err != nil {
		t.Fatalf("apptest: start server: %v", err)
	}
	s.App = a
	s.URL = "http://" + a.Addr("client")
	s.Name = s.Config.ServerName
	if addr := a.Addr("federation"); addr != "" {
		s.FederationURL = "https://" + addr
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	s.cancel, s.done = cancel, done
	go func() {
		err := a.Run(ctx)
		a.Close()
		done <- err
	}()
}

// Stop shuts the server down gracefully and waits for it; a second call
// does nothing.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	if err := <-s.done; err != nil {
		t.Errorf("apptest: server stopped with %v", err)
	}
}

// Restart stops the server and starts it again on the same database and
// data directory (keys, accounts and devices must survive).
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop(t)
	// The restarted server gets new ports: the old ones may linger in
	// TIME_WAIT and the test addresses the server through s.URL anyway.
	s.start(t)
}

// Response is a decoded JSON response.
type Response struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    []byte
}

// Errcode is the errcode of an error response, "" otherwise.
func (r Response) Errcode() string {
	code, _ := r.Body["errcode"].(string)
	return code
}

// String returns a body field as a string ("" when absent).
func (r Response) String(key string) string {
	v, _ := r.Body[key].(string)
	return v
}

// Do sends a request to the client API. body is encoded as JSON unless it
// is a string or []byte, sent as is; token, when not empty, is the access
// token.
func (s *Server) Do(t testing.TB, method, path, token string, body any) Response {
	t.Helper()
	var reader io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		reader = bytes.NewReader([]byte(b))
	case []byte:
		reader = bytes.NewReader(b)
	default:
		encoded, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("apptest: encode body: %v", err)
		}
		reader = bytes.NewReader(encoded)
	}
	req, err := http.NewRequest(method, s.URL+path, reader)
	if err != nil {
		t.Fatalf("apptest: %v", err)
	}
	if reader != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("apptest: %s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("apptest: read %s %s: %v", method, path, err)
	}
	out := Response{Status: res.StatusCode, Header: res.Header, Raw: raw}
	if len(raw) > 0 && json.Valid(raw) {
		_ = json.Unmarshal(raw, &out.Body)
	}
	return out
}

// Register creates an account with open registration (m.login.dummy) and
// returns its user id and access token.
func (s *Server) Register(t testing.TB, localpart, password string) (userID, token string) {
	t.Helper()
	body := map[string]any{
		"username": localpart,
		"password": password,
		"auth":     map[string]any{"type": "m.login.dummy"},
	}
	res := s.Do(t, http.MethodPost, "/_matrix/client/v3/register", "", body)
	if res.Status == http.StatusUnauthorized {
		// First request of a UIA flow: complete the dummy stage in its session.
		body["auth"] = map[string]any{"type": "m.login.dummy", "session": res.String("session")}
		res = s.Do(t, http.MethodPost, "/_matrix/client/v3/register", "", body)
	}
	if res.Status != http.StatusOK {
		t.Fatalf("apptest: register %s: %d %s", localpart, res.Status, res.Raw)
	}
	return res.String("user_id"), res.String("access_token")
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// MustStatus fails the test when the response status is not want.
func MustStatus(t testing.TB, res Response, want int) {
	t.Helper()
	if res.Status != want {
		t.Fatalf("status %d, want %d: %s", res.Status, want, res.Raw)
	}
}

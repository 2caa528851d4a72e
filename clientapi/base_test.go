package clientapi

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/httpmetrics"
	"github.com/parleyhq/parley/mxerr"
)

func newTestAPI(t *testing.T, mutate func(*config.Config)) (*API, *prometheus.Registry) {
	t.Helper()
	cfg := config.Defaults()
	cfg.ServerName = "example.org"
	if mutate != nil {
		mutate(&cfg)
	}
	reg := prometheus.NewRegistry()
	metrics := httpmetrics.New(reg, "client")
	return New(Deps{Config: &cfg, Logger: slog.New(slog.DiscardHandler), Metrics: metrics}), reg
}

func do(t *testing.T, h http.Handler, method, path, body string) (*http.Response, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := rec.Result()
	raw, _ := io.ReadAll(res.Body)
	var decoded map[string]any
	if len(raw) > 0 && strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &decoded); err != nil {
			t.Fatalf("%s %s: response is not JSON: %q", method, path, raw)
		}
	}
	return res, decoded
}

func TestUnknownEndpointAndWrongMethod(t *testing.T) {
	api, _ := newTestAPI(t, nil)
	cases := []struct {
		name, method, path string
		status             int
	}{
		{"unknown path", http.MethodGet, "/_matrix/client/v3/nonsense", http.StatusNotFound},
		{"wrong method on a known path", http.MethodPost, "/_matrix/client/versions", http.StatusMethodNotAllowed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, body := do(t, api, c.method, c.path, "")
			if res.StatusCode != c.status || body["errcode"] != "M_UNRECOGNIZED" {
				t.Errorf("got %d %v, want %d M_UNRECOGNIZED", res.StatusCode, body, c.status)
			}
		})
	}
}

func TestCORS(t *testing.T) {
	api, _ := newTestAPI(t, nil)
	res, _ := do(t, api, http.MethodOptions, "/_matrix/client/v3/login", "")
	if res.StatusCode != http.StatusNoContent {
		t.Errorf("preflight status %d, want 204", res.StatusCode)
	}
	for _, path := range []string{"/_matrix/client/versions", "/_matrix/client/v3/nonsense"} {
		res, _ := do(t, api, http.MethodGet, path, "")
		if got := res.Header.Get("Access-Control-Allow-Origin"); got != "*" {
			t.Errorf("%s: Access-Control-Allow-Origin %q", path, got)
		}
		if got := res.Header.Get("Access-Control-Allow-Headers"); !strings.Contains(got, "Authorization") {
			t.Errorf("%s: Access-Control-Allow-Headers %q lacks Authorization", path, got)
		}
	}
}

func TestVersionsAndCapabilities(t *testing.T) {
	api, _ := newTestAPI(t, nil)
	res, body := do(t, api, http.MethodGet, "/_matrix/client/versions", "")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("versions: %d", res.StatusCode)
	}
	versions, _ := body["versions"].([]any)
	if len(versions) == 0 || versions[len(versions)-1] != "v1.19" {
		t.Errorf("versions %v should end with v1.19", versions)
	}
	_, body = do(t, api, http.MethodGet, "/_matrix/client/v3/capabilities", "")
	caps, _ := body["capabilities"].(map[string]any)
	rv, _ := caps["m.room_versions"].(map[string]any)
	available, _ := rv["available"].(map[string]any)
	if rv["default"] != "10" || len(available) != 12 || available["12"] != "stable" {
		t.Errorf("m.room_versions = %v", rv)
	}
}

func TestWellKnown(t *testing.T) {
	api, _ := newTestAPI(t, func(c *config.Config) { c.Listen.Client = "0.0.0.0:8008" })
	_, body := do(t, api, http.MethodGet, "/.well-known/matrix/client", "")
	hs, _ := body["m.homeserver"].(map[string]any)
	if hs["base_url"] != "http://example.org:8008" {
		t.Errorf("base_url = %v", hs["base_url"])
	}
	res, body := do(t, api, http.MethodGet, "/.well-known/matrix/server", "")
	if res.StatusCode != http.StatusNotFound || body["errcode"] != "M_NOT_FOUND" {
		t.Errorf("no delegation: got %d %v", res.StatusCode, body)
	}

	api, _ = newTestAPI(t, func(c *config.Config) {
		c.WellKnown.Server = "matrix.example.org:443"
		c.WellKnown.ClientBaseURL = "https://matrix.example.org/"
	})
	_, body = do(t, api, http.MethodGet, "/.well-known/matrix/server", "")
	if body["m.server"] != "matrix.example.org:443" {
		t.Errorf("m.server = %v", body["m.server"])
	}
	_, body = do(t, api, http.MethodGet, "/.well-known/matrix/client", "")
	hs, _ = body["m.homeserver"].(map[string]any)
	if hs["base_url"] != "https://matrix.example.org" {
		t.Errorf("configured base_url = %v", hs["base_url"])
	}
}

func TestHealth(t *testing.T) {
	api, _ := newTestAPI(t, nil)
	ready := errors.New("migrations pending")
	api.Ready = func(*http.Request) error { return ready }
	if res, _ := do(t, api, http.MethodGet, "/health", ""); res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("not ready: %d, want 503", res.StatusCode)
	}
	ready = nil
	if res, _ := do(t, api, http.MethodGet, "/health", ""); res.StatusCode != http.StatusOK {
		t.Errorf("ready: %d, want 200", res.StatusCode)
	}
}

func TestMetricsCountByRoute(t *testing.T) {
	api, reg := newTestAPI(t, nil)
	do(t, api, http.MethodGet, "/_matrix/client/versions", "")
	do(t, api, http.MethodGet, "/_matrix/client/versions", "")
	do(t, api, http.MethodGet, "/nope", "")
	want := `
# HELP parley_http_requests_total HTTP requests served, by route, method and status.
# TYPE parley_http_requests_total counter
parley_http_requests_total{api="client",method="GET",route="/_matrix/client/versions",status="200"} 2
parley_http_requests_total{api="client",method="GET",route="unmatched",status="404"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "parley_http_requests_total"); err != nil {
		t.Error(err)
	}
}

func TestDecodeJSONObject(t *testing.T) {
	type request struct {
		User  string `json:"user"`
		Count int    `json:"count"`
		Flags []bool `json:"flags"`
	}
	cases := []struct {
		name       string
		body       string
		allowEmpty bool
		want       *mxerr.Error
		inMessage  string
	}{
		{"valid", `{"user":"a","count":2}`, false, nil, ""},
		{"empty not allowed", ``, false, mxerr.NotJSON, "empty"},
		{"empty allowed", `  `, true, nil, ""},
		{"not JSON", `{"user":`, false, mxerr.NotJSON, ""},
		{"garbage", `hello`, false, mxerr.NotJSON, ""},
		{"array", `[1,2]`, false, mxerr.BadJSON, "object"},
		{"wrong type names the field", `{"count":"two"}`, false, mxerr.BadJSON, `"count"`},
		{"wrong element type", `{"flags":[1]}`, false, mxerr.BadJSON, "flags"},
		{"trailing data", `{"user":"a"} {}`, false, mxerr.NotJSON, "after"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var v request
			err := DecodeJSONObject([]byte(c.body), &v, c.allowEmpty)
			if c.want == nil {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %s", err, c.want.Code)
			}
			if !strings.Contains(err.Error(), c.inMessage) {
				t.Errorf("message %q should mention %q", err.Error(), c.inMessage)
			}
		})
	}
}

func TestBodyTooLarge(t *testing.T) {
	api, _ := newTestAPI(t, func(c *config.Config) { c.Client.MaxBodyBytes = 1024 })
	req := httptest.NewRequest(http.MethodPost, "/x", strings.NewReader(`{"a":"`+strings.Repeat("x", 2000)+`"}`))
	var v map[string]any
	err := api.decodeJSON(httptest.NewRecorder(), req, &v)
	if !errors.Is(err, mxerr.TooLarge) {
		t.Fatalf("got %v, want M_TOO_LARGE", err)
	}
}

func TestUnknownErrorsAreGeneric(t *testing.T) {
	api, _ := newTestAPI(t, nil)
	rec := httptest.NewRecorder()
	api.writeError(rec, httptest.NewRequest(http.MethodGet, "/", nil), errors.New("pq: secret table name"))
	var body map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	if rec.Code != 500 || body["errcode"] != "M_UNKNOWN" || strings.Contains(rec.Body.String(), "secret") {
		t.Errorf("got %d %s", rec.Code, rec.Body.String())
	}
	rec = httptest.NewRecorder()
	api.writeError(rec, httptest.NewRequest(http.MethodGet, "/", nil),
		mxerr.LimitExceeded.With("retry_after_ms", int64(1500)))
	if rec.Code != 429 || rec.Header().Get("Retry-After") != "2" {
		t.Errorf("rate limit: %d Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
	}
}

package fedclient

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/federation/fedtest"
	"github.com/parleyhq/parley/federation/xmatrix"
	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/rooms/signing"
)

// tlsServer serves h over TLS with a certificate of ca for names.
func tlsServer(t *testing.T, ca *fedtest.CA, h http.Handler, names ...string) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.TLSCertificate(t, names...)}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func newClient(t *testing.T, mutate func(*config.Federation)) (*Client, signing.Key) {
	t.Helper()
	key, err := signing.Generate("ed25519:t1")
	if err != nil {
		t.Fatal(err)
	}
	f := config.DefaultFederation()
	f.RequestTimeout = 5 * time.Second
	f.ConnectTimeout = 2 * time.Second
	if mutate != nil {
		mutate(&f)
	}
	c, err := New(Config{ServerName: "hs1.test", Key: key, Federation: f}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

func hostPort(srv *httptest.Server) string { return srv.Listener.Addr().String() }

func TestDoSignsAndDecodes(t *testing.T) {
	ca := fedtest.NewCA(t)
	var clientKey ed25519.PublicKey
	srv := tlsServer(t, ca, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		keys := func(_ context.Context, s id.ServerName, keyID string, _ int64) (ed25519.PublicKey, error) {
			if s != "hs1.test" || keyID != "ed25519:t1" {
				return nil, errors.New("unknown")
			}
			return clientKey, nil
		}
		origin, err := xmatrix.Verify(r.Context(), r.Header.Values("Authorization"), "hs2.test", r.Method, r.RequestURI, body, keys)
		switch {
		case r.URL.Path == "/_matrix/key/v2/server":
			if r.Header.Get("Authorization") != "" {
				t.Error("DoUnsigned sent an Authorization header")
			}
			_, _ = w.Write([]byte(`{"ok":"unsigned"}`))
		case err != nil:
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"errcode":"M_UNAUTHORIZED","error":"` + err.Error() + `"}`))
		case r.URL.Path == "/forbidden":
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"errcode":"M_FORBIDDEN","error":"no"}`))
		case r.URL.Path == "/empty":
			w.WriteHeader(http.StatusOK)
		case r.URL.Path == "/not-json":
			_, _ = w.Write([]byte("<html>"))
		case r.URL.Path == "/slow-down":
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"errcode":"M_LIMIT_EXCEEDED","retry_after_ms":1500}`))
		default:
			_ = json.NewEncoder(w).Encode(map[string]any{"origin": origin, "host": r.Host, "uri": r.RequestURI, "body": string(body), "agent": r.UserAgent()})
		}
	}), "hs2.test")
	c, key := newClient(t, func(f *config.Federation) {
		f.Resolve = map[string]string{"hs2.test": hostPort(srv)}
		f.CAFile = ca.WriteCA(t)
		f.AllowPrivateAddresses = true
	})
	clientKey = key.Public()
	ctx := context.Background()

	var got map[string]string
	path := "/_matrix/federation/v1/event/%24ev%2Fx?limit=10&x=a%20b"
	if err := c.Do(ctx, "hs2.test", "PUT", path, map[string]any{"a": 1}, &got); err != nil {
		t.Fatal(err)
	}
	if got["origin"] != "hs1.test" || got["host"] != "hs2.test" || got["uri"] != path || got["body"] != `{"a":1}` || got["agent"] != UserAgent {
		t.Errorf("server saw %v", got)
	}
	var raw []byte
	if err := c.Do(ctx, "hs2.test", "GET", "/x", nil, &raw); err != nil || !json.Valid(raw) {
		t.Errorf("raw response %q, %v", raw, err)
	}
	if err := c.DoUnsigned(ctx, "hs2.test", "GET", "/_matrix/key/v2/server", nil, &raw); err != nil || string(raw) != `{"ok":"unsigned"}` {
		t.Errorf("unsigned: %q, %v", raw, err)
	}
	err := c.Do(ctx, "hs2.test", "GET", "/forbidden", nil, nil)
	var fe *Error
	if !errors.As(err, &fe) || fe.Status != 403 || !IsErrcode(err, "M_FORBIDDEN") || StatusOf(err) != 403 || fe.Message != "no" {
		t.Errorf("forbidden: %v", err)
	}
	err = c.Do(ctx, "hs2.test", "GET", "/slow-down", nil, nil)
	if !errors.As(err, &fe) || fe.RetryAfter != 1500*time.Millisecond {
		t.Errorf("rate limited: %v", err)
	}
	var decoded struct{ X int }
	if err := c.Do(ctx, "hs2.test", "GET", "/empty", nil, &decoded); err != nil {
		t.Errorf("empty 200 body: %v", err)
	}
	if err := c.Do(ctx, "hs2.test", "GET", "/not-json", nil, &decoded); err == nil || StatusOf(err) != 0 {
		t.Errorf("HTML 200 body: %v, want a decode error", err)
	}
	res, err := c.DoRaw(ctx, "hs2.test", "GET", "/stream", nil, http.Header{"Accept": {"multipart/mixed"}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("DoRaw status %d", res.StatusCode)
	}
	for _, m := range []struct {
		method, status string
		want           float64
	}{{"PUT", "200", 1}, {"GET", "200", 5}, {"GET", "403", 1}, {"GET", "429", 1}} {
		if got := testutil.ToFloat64(c.metrics.requests.WithLabelValues(m.method, m.status)); got != m.want {
			t.Errorf("outbound requests %s %s = %v, want %v", m.method, m.status, got, m.want)
		}
	}
}

func TestTLSIsVerified(t *testing.T) {
	ca, otherCA := fedtest.NewCA(t), fedtest.NewCA(t)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("{}")) })
	right := tlsServer(t, ca, ok, "hs2.test")
	wrongName := tlsServer(t, ca, ok, "other.test")
	wrongCA := tlsServer(t, otherCA, ok, "hs2.test")
	ipCert := tlsServer(t, ca, ok, "127.0.0.1")
	tests := []struct {
		name   string
		server id.ServerName
		addr   string
		caFile bool
		ok     bool
	}{
		{"trusted CA, right name", "hs2.test", hostPort(right), true, true},
		{"CA not configured", "hs2.test", hostPort(right), false, false},
		{"certificate for another name", "hs2.test", hostPort(wrongName), true, false},
		{"certificate of another CA", "hs2.test", hostPort(wrongCA), true, false},
		// An IP literal server name: the certificate must be for the IP.
		{"IP literal with an IP certificate", id.ServerName(hostPort(ipCert)), "", true, true},
		{"IP literal with a name certificate", id.ServerName(hostPort(right)), "", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newClient(t, func(f *config.Federation) {
				if tt.addr != "" {
					f.Resolve = map[string]string{string(tt.server): tt.addr}
				}
				if tt.caFile {
					f.CAFile = ca.WriteCA(t)
				}
				f.AllowPrivateAddresses = true
			})
			err := c.Do(context.Background(), tt.server, "GET", "/", nil, nil)
			if (err == nil) != tt.ok {
				t.Fatalf("Do = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

func TestPrivateAddressesRefused(t *testing.T) {
	ca := fedtest.NewCA(t)
	srv := tlsServer(t, ca, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("a request reached a loopback server")
	}), "hs2.test", "127.0.0.1")
	// Through the resolve map, an IP literal and a name that resolves to
	// loopback: each is refused at dial time.
	for _, server := range []id.ServerName{"hs2.test", id.ServerName(hostPort(srv)), "localhost:" + id.ServerName(srv.URL[len("https://127.0.0.1:"):])} {
		c, _ := newClient(t, func(f *config.Federation) {
			f.Resolve = map[string]string{"hs2.test": hostPort(srv)}
			f.CAFile = ca.WriteCA(t)
		})
		err := c.Do(context.Background(), server, "GET", "/", nil, nil)
		if !errors.Is(err, errPrivateAddress) {
			t.Errorf("%s: %v, want a refusal of the private address", server, err)
		}
		if got := testutil.ToFloat64(c.metrics.requests.WithLabelValues("GET", "0")); got != 1 {
			t.Errorf("%s: requests without an answer counted %v times", server, got)
		}
	}
}

// TestPutRetriedOnStaleConnection: a PUT on a pooled connection that the
// remote drops (a restart) is sent again on a new connection.
func TestPutRetriedOnStaleConnection(t *testing.T) {
	ca := fedtest.NewCA(t)
	var mu sync.Mutex
	perConn := map[string]int{}
	srv := tlsServer(t, ca, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		mu.Lock()
		perConn[r.RemoteAddr]++
		n := perConn[r.RemoteAddr]
		mu.Unlock()
		if n == 2 {
			// The second request on a connection: drop it unanswered.
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		_, _ = w.Write([]byte(`{}`))
	}), "hs2.test")
	c, _ := newClient(t, func(f *config.Federation) {
		f.Resolve = map[string]string{"hs2.test": hostPort(srv)}
		f.CAFile = ca.WriteCA(t)
		f.AllowPrivateAddresses = true
	})
	for i := range 2 {
		if err := c.Do(context.Background(), "hs2.test", "PUT", "/_matrix/federation/v1/send/t"+strconv.Itoa(i), map[string]any{}, nil); err != nil {
			t.Fatalf("PUT %d: %v", i, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(perConn) != 2 {
		t.Errorf("%d connections, want 2 (the second PUT resent on a new one)", len(perConn))
	}
}

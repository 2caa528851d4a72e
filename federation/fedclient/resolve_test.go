package fedclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/federation/fedtest"
	"github.com/parleyhq/parley/id"
)

// wellKnownSite answers /.well-known/matrix/server per Host.
type wellKnownSite struct {
	mu    sync.Mutex
	pages map[string]wkPage
	hits  map[string]int
}

type wkPage struct {
	status int
	body   string
	header http.Header
}

func (s *wellKnownSite) count(host string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[host]
}

func (s *wellKnownSite) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	page, ok := s.pages[r.Host]
	s.hits[r.Host]++
	s.mu.Unlock()
	if !ok || r.URL.Path != "/.well-known/matrix/server" {
		http.NotFound(w, r)
		return
	}
	for k, v := range page.header {
		w.Header()[k] = v
	}
	w.WriteHeader(page.status)
	_, _ = w.Write([]byte(page.body))
}

// testResolver resolves with fake SRV records and a well-known site that
// answers for every host name (all dials go to it).
func testResolver(t *testing.T, site *wellKnownSite, srv map[string][]*net.SRV, now func() time.Time) *resolver {
	t.Helper()
	ca := fedtest.NewCA(t)
	names := []string{}
	for host := range site.pages {
		names = append(names, host)
	}
	names = append(names, "nothing.example", "broken.example")
	ts := tlsServer(t, ca, site, names...)
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	transport := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, hostPort(ts))
		},
		TLSClientConfig: &tls.Config{RootCAs: roots},
	}
	return &resolver{
		static: map[id.ServerName]string{"static.example": "10.0.0.9:1234"},
		lookupSRV: func(_ context.Context, service, proto, name string) (string, []*net.SRV, error) {
			if recs, ok := srv["_"+service+"._"+proto+"."+name]; ok {
				return "", recs, nil
			}
			return "", nil, errors.New("no such host")
		},
		wellKnown: &http.Client{Transport: transport},
		now:       now,
		wk:        map[string]wellKnownEntry{},
		targets:   map[id.ServerName]targetEntry{},
	}
}

func TestDiscovery(t *testing.T) {
	site := &wellKnownSite{hits: map[string]int{}, pages: map[string]wkPage{
		"delegated-port.example": {200, `{"m.server":"matrix.delegated.example:443"}`, nil},
		"delegated-ip.example":   {200, `{"m.server":"[2001:db8::1]"}`, nil},
		"delegated-srv.example":  {200, `{"m.server":"srv-target.example"}`, nil},
		"delegated-old.example":  {200, `{"m.server":"old-srv.example"}`, nil},
		"delegated-bare.example": {200, `{"m.server":"bare.example"}`, nil},
		"invalid-wk.example":     {200, `{"m.server":"bad name!"}`, nil},
		"error-wk.example":       {500, `{"m.server":"ignored.example"}`, nil},
	}}
	srv := map[string][]*net.SRV{
		"_matrix-fed._tcp.srv-target.example": {{Target: "fed1.example.", Port: 8449}},
		"_matrix._tcp.old-srv.example":        {{Target: "legacy.example.", Port: 8450}},
		"_matrix-fed._tcp.plain-srv.example":  {{Target: "fed2.example.", Port: 443}},
		"_matrix._tcp.plain-old.example":      {{Target: "legacy2.example.", Port: 8451}},
		// SRV of the server name is not used when well-known delegates.
		"_matrix-fed._tcp.delegated-bare.example": {{Target: "wrong.example.", Port: 1}},
		"_matrix-fed._tcp.invalid-wk.example":     {{Target: "fed3.example.", Port: 8452}},
	}
	r := testResolver(t, site, srv, time.Now)
	tests := []struct {
		server id.ServerName
		want   Target
	}{
		{"static.example", Target{"10.0.0.9:1234", "static.example", "static.example", nil}},
		{"1.2.3.4", Target{"1.2.3.4:8448", "1.2.3.4", "1.2.3.4", nil}},
		{"1.2.3.4:9000", Target{"1.2.3.4:9000", "1.2.3.4:9000", "1.2.3.4", nil}},
		{"[2001:db8::2]:9000", Target{"[2001:db8::2]:9000", "[2001:db8::2]:9000", "2001:db8::2", nil}},
		{"host.example:8000", Target{"host.example:8000", "host.example:8000", "host.example", nil}},
		{"delegated-port.example", Target{"matrix.delegated.example:443", "matrix.delegated.example:443", "matrix.delegated.example", nil}},
		{"delegated-ip.example", Target{"[2001:db8::1]:8448", "[2001:db8::1]", "2001:db8::1", nil}},
		{"delegated-srv.example", Target{"fed1.example:8449", "srv-target.example", "srv-target.example", nil}},
		{"delegated-old.example", Target{"legacy.example:8450", "old-srv.example", "old-srv.example", nil}},
		{"delegated-bare.example", Target{"bare.example:8448", "bare.example", "bare.example", nil}},
		{"invalid-wk.example", Target{"fed3.example:8452", "invalid-wk.example", "invalid-wk.example", nil}},
		{"error-wk.example", Target{"error-wk.example:8448", "error-wk.example", "error-wk.example", nil}},
		{"plain-srv.example", Target{"fed2.example:443", "plain-srv.example", "plain-srv.example", nil}},
		{"plain-old.example", Target{"legacy2.example:8451", "plain-old.example", "plain-old.example", nil}},
		{"nothing.example", Target{"nothing.example:8448", "nothing.example", "nothing.example", nil}},
	}
	for _, tt := range tests {
		t.Run(string(tt.server), func(t *testing.T) {
			got, err := r.resolve(context.Background(), tt.server)
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("resolve = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
	if _, err := r.resolve(context.Background(), "bad name"); err == nil {
		t.Error("an invalid server name resolved")
	}
}

func TestWellKnownCache(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	site := &wellKnownSite{hits: map[string]int{}, pages: map[string]wkPage{
		"maxage.example":  {200, `{"m.server":"a.example:1"}`, http.Header{"Cache-Control": {"public, max-age=60"}}},
		"default.example": {200, `{"m.server":"b.example:1"}`, nil},
		"expires.example": {200, `{"m.server":"c.example:1"}`, http.Header{"Expires": {now.Add(2 * time.Hour).UTC().Format(http.TimeFormat)}}},
		"long.example":    {200, `{"m.server":"d.example:1"}`, http.Header{"Cache-Control": {"max-age=31536000"}}},
		"nostore.example": {200, `{"m.server":"e.example:1"}`, http.Header{"Cache-Control": {"no-store"}}},
		"error.example":   {404, ``, nil},
	}}
	r := testResolver(t, site, nil, clock)
	ctx := context.Background()
	tests := []struct {
		host      string
		server    string
		stillHeld time.Duration // cached this long
		refetched time.Duration // fetched again after this
	}{
		{"maxage.example", "a.example:1", 59 * time.Second, 61 * time.Second},
		{"default.example", "b.example:1", 23 * time.Hour, 25 * time.Hour},
		{"expires.example", "c.example:1", 119 * time.Minute, 121 * time.Minute},
		{"long.example", "d.example:1", 47 * time.Hour, 49 * time.Hour},
		{"nostore.example", "e.example:1", 0, time.Second},
		{"error.example", "", 4 * time.Minute, 6 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			start := now
			defer func() { now = start }()
			if got := r.wellKnownServer(ctx, tt.host); got != tt.server {
				t.Fatalf("m.server = %q, want %q", got, tt.server)
			}
			hits := site.count(tt.host)
			if tt.stillHeld > 0 {
				now = start.Add(tt.stillHeld)
				r.wellKnownServer(ctx, tt.host)
				if site.count(tt.host) != hits {
					t.Errorf("fetched again after %s", tt.stillHeld)
				}
			}
			now = start.Add(tt.refetched)
			if got := r.wellKnownServer(ctx, tt.host); got != tt.server {
				t.Errorf("refetched m.server = %q", got)
			}
			if site.count(tt.host) != hits+1 {
				t.Errorf("not fetched again after %s (hits %d → %d)", tt.refetched, hits, site.count(tt.host))
			}
		})
	}
}

func TestWellKnownFailuresBackOff(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	site := &wellKnownSite{hits: map[string]int{}, pages: map[string]wkPage{
		"flaky.example": {503, ``, nil},
	}}
	r := testResolver(t, site, nil, func() time.Time { return now })
	ctx := context.Background()
	// Consecutive failures are kept 5, 10, 20, 40, 60, 60 minutes.
	for i, kept := range []time.Duration{5, 10, 20, 40, 60, 60} {
		kept *= time.Minute
		r.wellKnownServer(ctx, "flaky.example")
		if site.count("flaky.example") != i+1 {
			t.Fatalf("failure %d: %d fetches", i+1, site.count("flaky.example"))
		}
		now = now.Add(kept - time.Second)
		r.wellKnownServer(ctx, "flaky.example")
		if site.count("flaky.example") != i+1 {
			t.Fatalf("failure %d refetched before %s", i+1, kept)
		}
		now = now.Add(2 * time.Second)
	}
	// A success resets the back-off.
	site.mu.Lock()
	site.pages["flaky.example"] = wkPage{200, `{"m.server":"ok.example:1"}`, nil}
	site.mu.Unlock()
	if got := r.wellKnownServer(ctx, "flaky.example"); got != "ok.example:1" {
		t.Fatalf("m.server = %q", got)
	}
	if e := r.wk["flaky.example"]; e.failures != 0 {
		t.Errorf("failures after a success = %d", e.failures)
	}
}

func TestTargetCacheAndForget(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	site := &wellKnownSite{hits: map[string]int{}, pages: map[string]wkPage{}}
	srv := map[string][]*net.SRV{"_matrix-fed._tcp.moving.example": {{Target: "a.example.", Port: 1}}}
	r := testResolver(t, site, srv, func() time.Time { return now })
	ctx := context.Background()
	first, _ := r.resolve(ctx, "moving.example")
	srv["_matrix-fed._tcp.moving.example"] = []*net.SRV{{Target: "b.example.", Port: 2}}
	if again, _ := r.resolve(ctx, "moving.example"); !reflect.DeepEqual(again, first) {
		t.Errorf("target not cached: %+v then %+v", first, again)
	}
	// A failed connection forgets the target: the next request discovers.
	r.forget("moving.example")
	if moved, _ := r.resolve(ctx, "moving.example"); moved.Addr != "b.example:2" {
		t.Errorf("after forget: %+v", moved)
	}
	// So does time.
	srv["_matrix-fed._tcp.moving.example"] = []*net.SRV{{Target: "c.example.", Port: 3}}
	now = now.Add(targetTTL + time.Second)
	if moved, _ := r.resolve(ctx, "moving.example"); moved.Addr != "c.example:3" {
		t.Errorf("after %s: %+v", targetTTL, moved)
	}
}

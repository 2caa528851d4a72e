package app_test

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/app"
	"github.com/parleyhq/parley/apptest"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/storage/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestServesHealthVersionsAndMetrics(t *testing.T) {
	s := apptest.Start(t)
	res := s.Do(t, http.MethodGet, "/health", "", nil)
	if res.Status != http.StatusOK || string(res.Raw) != "OK\n" {
		t.Errorf("health: %d %q", res.Status, res.Raw)
	}
	res = s.Do(t, http.MethodGet, "/_matrix/client/versions", "", nil)
	if res.Status != http.StatusOK || res.Body["versions"] == nil {
		t.Errorf("versions: %d %s", res.Status, res.Raw)
	}

	metrics, err := http.Get("http://" + s.App.Addr("metrics") + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(metrics.Body)
	metrics.Body.Close()
	for _, want := range []string{
		`parley_http_requests_total{api="client",method="GET",route="/_matrix/client/versions",status="200"} 1`,
		"parley_http_request_duration_seconds_bucket",
		"parley_db_pool_max_connections 8",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestFederationListenerIsTLSWithSelfSignedCertificate(t *testing.T) {
	s := apptest.Start(t)
	conn, err := tls.Dial("tcp", s.App.Addr("federation"), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("TLS handshake with the federation listener: %v", err)
	}
	defer conn.Close()
	cert := conn.ConnectionState().PeerCertificates[0]
	if len(cert.DNSNames) != 1 || cert.DNSNames[0] != apptest.ServerName {
		t.Errorf("certificate names %v, want [%s]", cert.DNSNames, apptest.ServerName)
	}
	if _, err := os.Stat(filepath.Join(s.Config.DataDir, "tls.crt")); err != nil {
		t.Errorf("self-signed certificate not kept in data_dir: %v", err)
	}
}

func TestRestartKeepsSigningKeyAndCertificate(t *testing.T) {
	s := apptest.Start(t)
	key := s.App.SigningKey()
	if !strings.HasPrefix(key.ID(), "ed25519:") {
		t.Fatalf("key id %q", key.ID())
	}
	certBefore, err := os.ReadFile(filepath.Join(s.Config.DataDir, "tls.crt"))
	if err != nil {
		t.Fatal(err)
	}
	s.Restart(t)
	after := s.App.SigningKey()
	if after.ID() != key.ID() || after.Seed() != key.Seed() {
		t.Errorf("signing key changed across a restart: %s → %s", key.ID(), after.ID())
	}
	certAfter, _ := os.ReadFile(filepath.Join(s.Config.DataDir, "tls.crt"))
	if string(certAfter) != string(certBefore) {
		t.Error("self-signed certificate regenerated across a restart")
	}
	if res := s.Do(t, http.MethodGet, "/health", "", nil); res.Status != http.StatusOK {
		t.Errorf("health after restart: %d", res.Status)
	}
}

// Shutdown: Run returns once its context ends, well within the shutdown
// timeout, and the listener refuses connections afterwards.
func TestRunStopsWhenItsContextEnds(t *testing.T) {
	cfg := config.Defaults()
	cfg.ServerName = apptest.ServerName
	cfg.DataDir = t.TempDir()
	cfg.Database.URL = pgtest.NewDatabase(t)
	cfg.Listen = config.Listen{Client: "127.0.0.1:0"}
	a, err := app.New(context.Background(), &cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()

	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	res, err := client.Get("http://" + a.Addr("client") + "/health")
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("health before shutdown: %v %v", res, err)
	}
	res.Body.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(cfg.Client.ShutdownTimeout):
		t.Fatal("Run did not return within the shutdown timeout")
	}
	if _, err := client.Get("http://" + a.Addr("client") + "/health"); err == nil {
		t.Error("server still accepts connections after shutdown")
	}
}

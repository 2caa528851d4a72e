package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// The default file at the repository root documents every key with its
// default value: it must decode to exactly Defaults().
func TestDefaultFileMatchesDefaults(t *testing.T) {
	cfg, err := Load(filepath.Join("..", "config.yaml"), true, nil)
	if err != nil {
		t.Fatalf("load config.yaml: %v", err)
	}
	if want := Defaults(); !reflect.DeepEqual(*cfg, want) {
		t.Errorf("config.yaml differs from Defaults():\n file: %+v\n code: %+v", *cfg, want)
	}
}

func TestDefaultFileHasEveryKey(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var tree map[string]any
	if err := yaml.Unmarshal(data, &tree); err != nil {
		t.Fatal(err)
	}
	for _, key := range Keys() {
		if !keyPresent(tree, key) {
			t.Errorf("config.yaml lacks key %s", key)
		}
	}
}

func keyPresent(tree map[string]any, key string) bool {
	parts := strings.Split(key, ".")
	node := tree
	for i, part := range parts {
		v, ok := node[part]
		if !ok {
			return false
		}
		if i == len(parts)-1 {
			return true
		}
		if node, ok = v.(map[string]any); !ok {
			return false
		}
	}
	return false
}

func TestRequiredKeyNames(t *testing.T) {
	// Tools and tests drive the server through these names (issue #2).
	required := []string{
		"server_name", "data_dir", "database.url", "listen.client", "listen.federation",
		"listen.metrics", "tls.cert", "tls.key", "registration.mode",
		"registration.shared_secret", "rate_limits.enabled", "log.level", "log.format",
	}
	have := map[string]bool{}
	for _, k := range Keys() {
		have[k] = true
	}
	for _, k := range required {
		if !have[k] {
			t.Errorf("missing configuration key %s", k)
		}
	}
}

func TestEnvironmentOverrides(t *testing.T) {
	env := []string{
		"PARLEY_SERVER_NAME=hs1",
		"PARLEY_DATABASE_URL=postgres://db.example/parley",
		"PARLEY_LISTEN_CLIENT=127.0.0.1:18008",
		"PARLEY_RATE_LIMITS_ENABLED=false",
		"PARLEY_CLIENT_SHUTDOWN_TIMEOUT=3s",
		"PARLEY_DATABASE_MAX_CONNS=7",
		"UNRELATED=1",
	}
	cfg, err := Load("", false, env)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"server_name", string(cfg.ServerName), "hs1"},
		{"database.url", cfg.Database.URL, "postgres://db.example/parley"},
		{"listen.client", cfg.Listen.Client, "127.0.0.1:18008"},
		{"rate_limits.enabled", cfg.RateLimits.Enabled, false},
		{"client.shutdown_timeout", cfg.Client.ShutdownTimeout, 3 * time.Second},
		{"database.max_conns", cfg.Database.MaxConns, 7},
		{"listen.federation keeps its default", cfg.Listen.Federation, "0.0.0.0:8448"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestEnvironmentOverridesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "parley.yaml")
	if err := os.WriteFile(path, []byte("server_name: from-file\nlog:\n  level: debug\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path, true, []string{"PARLEY_SERVER_NAME=from-env"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ServerName != "from-env" || cfg.Log.Level != "debug" {
		t.Errorf("got server_name %q log.level %q, want from-env and debug", cfg.ServerName, cfg.Log.Level)
	}
}

func TestValidationReportsEveryProblem(t *testing.T) {
	env := []string{
		"PARLEY_SERVER_NAME=bad name!",
		"PARLEY_LISTEN_CLIENT=nonsense",
		"PARLEY_REGISTRATION_MODE=sometimes",
		"PARLEY_LOG_FORMAT=xml",
		"PARLEY_TLS_CERT=/only/cert.pem",
	}
	_, err := Load("", false, env)
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("want a ValidationError, got %v", err)
	}
	for _, key := range []string{"server_name", "listen.client", "registration.mode", "log.format", "tls.cert"} {
		found := false
		for _, p := range verr.Problems {
			if strings.HasPrefix(p, key) {
				found = true
			}
		}
		if !found {
			t.Errorf("no problem reported for %s in %q", key, verr.Problems)
		}
	}
}

func TestBadEnvironmentValues(t *testing.T) {
	_, err := Load("", false, []string{"PARLEY_RATE_LIMITS_ENABLED=maybe", "PARLEY_DATABASE_MAX_CONNS=many"})
	var verr *ValidationError
	if !errors.As(err, &verr) || len(verr.Problems) != 2 {
		t.Fatalf("want two problems, got %v", err)
	}
}

func TestUnknownFileKeyRejected(t *testing.T) {
	path := filepath.Join(t.TempDir(), "parley.yaml")
	if err := os.WriteFile(path, []byte("server_nmae: typo\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path, true, nil); err == nil || !strings.Contains(err.Error(), "server_nmae") {
		t.Fatalf("want an error naming the unknown key, got %v", err)
	}
}

func TestEnvName(t *testing.T) {
	if got := EnvName("registration.shared_secret"); got != "PARLEY_REGISTRATION_SHARED_SECRET" {
		t.Errorf("EnvName = %s", got)
	}
}
